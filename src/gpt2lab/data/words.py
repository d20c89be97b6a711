"""The vocabulary of the `stories` corpus: real English words, written out as data.

Nouns come with their plurals and verbs with their past tense where English is irregular
("mouse mice", "catch caught"); the regular forms follow the spelling rules in `plural`,
`third_person`, `past` and `gerund` ("box" -> "boxes", "hop" -> "hopped" -> "hopping").
"""

from __future__ import annotations

GIRLS = """
Abby Ada Alice Alma Amber Amy Anna Annie Ava Bella Beth Bonnie Carla Carmen Chloe Clara Cora
Daisy Dana Della Diana Dora Edith Effie Eliza Ella Ellie Elsa Emily Emma Erin Eva Eve Fay Fern
Fiona Flora Frida Gemma Georgia Gina Grace Greta Hannah Hazel Heidi Helen Holly Ida Irene Iris
Isla Ivy Jade Jane Jenny Jess Joan Josie Joy Julia June Kate Katie Kim Lana Laura Layla Lea
Lena Lila Lily Lina Linda Lisa Liz Lola Lucy Luna Lydia Mabel Maggie Maisie Mara Maria Martha
Maya Meg Mia Mila Millie Mina Molly Nadia Nancy Nell Nina Nora Olive Olivia Paula Pearl Penny
Phoebe Poppy Rita Rosa Rose Rosie Ruby Ruth Sadie Sally Sara Sarah Sasha Stella Sue Susan
Tara Tess Tilly Tina Vera Vicky Viola Wendy Willa Zara Zoe
""".split()

BOYS = """
Aaron Adam Alan Albert Alex Alfie Andy Arthur Ben Bill Billy Bob Brian Bruno Carl Charlie
Chris Dan Danny David Dean Eddie Eli Eric Ethan Felix Finn Frank Fred Gabe George Gus Hank
Harry Henry Hugo Ian Isaac Jack Jacob Jake James Jamie Jason Jim Joe Joel John Jonah Josh
Kevin Kyle Larry Leo Leon Liam Logan Louis Luca Luke Marco Mark Martin Matt Max Mike Miles
Milo Nate Ned Nick Noah Oliver Omar Oscar Owen Paul Pete Peter Phil Ralph Ray Rex Rick Rob
Roger Ron Roy Rudy Ryan Sam Scott Sean Seth Simon Stan Steve Ted Theo Tim Timmy Toby Tom Tommy
Tony Victor Vince Walter Wes Will Zack
""".split()

NEUTRALS = """
Ari Ash Bailey Blair Blake Casey Charlie Dakota Drew Eden Ellis Emery Finley Frankie Harper
Hayden Indigo Jesse Jordan Jules Kai Kendall Lane Lee Logan Marley Morgan Noel Parker Peyton
Quinn Reese Remy River Robin Rowan Sage Sky Sidney Taylor
""".split()

# singular or "singular plural" when the plural is irregular
ANIMALS = """
ant ape badger bat bear beaver bee beetle bird bison boar buffalo bull bunny butterfly camel
canary cat caterpillar chick chicken chipmunk cow crab crane crocodile crow cub deer:deer
dinosaur dog dolphin donkey dove dragon dragonfly duck duckling eagle eel elephant elk ferret
finch fish:fish flamingo fly fox frog gecko giraffe goat goldfish:goldfish goose:geese gorilla
grasshopper hamster hare hawk hedgehog hen heron hippo horse hummingbird jellyfish:jellyfish
kangaroo kitten koala ladybug lamb lark leopard lion lizard llama lobster mole monkey moose:moose
moth mouse:mice mule octopus ostrich otter owl ox:oxen panda parrot peacock pelican penguin pig
pigeon pony poodle porcupine puppy rabbit raccoon ram rat raven robin rooster salmon:salmon
seagull seal shark sheep:sheep shrimp:shrimp skunk sloth slug snail snake sparrow spider squid
squirrel starfish:starfish stork swan tiger toad tortoise turkey turtle unicorn walrus whale
wolf:wolves woodpecker worm yak zebra alpaca antelope armadillo baboon cheetah cockatoo cricket
falcon firefly gerbil gopher hyena iguana jaguar lemur lynx magpie manatee meerkat mink newt
ocelot oriole panther pheasant platypus puffin quail reindeer:reindeer rhino seahorse stingray
swallow tadpole termite toucan vulture warthog weasel wombat
""".split()

TOYS = """
ball balloon bat bead bear:bears bell bike block boat book bubble car crayon cube dinosaur
doll drum flute fort game guitar hoop horn jigsaw kite marble piano puppet puzzle rattle robot
rocket scooter skateboard sled slide spinner sticker swing top train trike truck trumpet wagon
whistle yoyo
""".split()

THINGS = """
anchor apron arrow axe bag basket bath bed bench blanket bottle bow bowl box bracelet branch
brick bridge broom brush bucket button cage cake camera candle cap card carpet chain chair
chalk clock cloak coat comb compass crown cup curtain cushion desk diary dish door drawer dress
egg envelope fan feather fence flag flashlight flower fork frame gate gift glass:glasses glove
hammer hat helmet jacket jar jug kettle key knife:knives ladder lamp lantern leaf:leaves letter
lid lock map mask medal mirror mitten mug nail napkin necklace needle net note notebook pail
paintbrush pan paper pebble pen pencil pillow pin pipe plate pocket postcard pot present purse
quilt rake ribbon ring rock rope rug ruler sack sandal saucer scarf scissors:scissors shell
shelf:shelves shield shirt shoe shovel sign skirt sock spoon stamp stick stone stool suitcase
sweater table teapot telescope tent ticket tie torch towel tray treasure tree trunk tub
umbrella vase wand watch wheel window wreath acorn badge barrel battery beanbag blender bolt
bonnet boot bouquet bucketful candlestick canoe carton cassette chest chimney coin cork
cradle crate crystal dice:dice doorbell easel eraser faucet fiddle fishbowl flask funnel goblet
hairbrush hammock handle harp hook hose jewel kayak keyboard ladle locket magnet marker mattress
microscope mop oar paddle padlock parasol pouch quiver raft saddle sailboat satchel scroll
sieve skillet slipper snowglobe spade sponge spool sprinkler statue stroller sunhat tambourine
teacup thimble toolbox toothbrush trophy tulip twig violin wallet whisk wristband xylophone
""".split()

FOODS = """
apple apricot bagel banana bean berry biscuit bun burrito carrot cherry cookie cracker cupcake
donut dumpling grape lemon lime mango melon muffin nut olive onion orange pancake peach peanut
pear pepper pickle pie plum potato:potatoes pretzel pumpkin radish sandwich strawberry taco
tomato:tomatoes waffle
""".split()

MASS_FOODS = """
bread butter cereal cheese chocolate corn cream honey jam oatmeal pasta pizza popcorn porridge
rice salad soup spaghetti stew sugar toast yogurt
""".split()

DRINKS = """
cider cocoa juice lemonade milk smoothie soda tea water
""".split()

PLACES = """
airport attic backyard bakery bank barn basement beach bedroom bridge cabin café camp canyon
castle cave cellar church city classroom cliff clinic clubhouse corner cottage countryside
desert dock farm field forest fountain garage garden greenhouse gym hallway harbor hill
hospital hotel island jungle kitchen lake library lighthouse market meadow mill mountain
museum orchard palace park playground pond pool porch post office river road school seaside
shop stable station store street swamp theater tower town treehouse valley village vineyard
waterfall woods workshop yard zoo alley arcade aquarium balcony bay boathouse bungalow campsite
carnival circus courtyard creek dairy den diner dune gallery glade grove hut igloo inn lagoon
lane lawn marsh mansion nursery oasis pasture pier plaza prairie quarry ranch reef ridge
stadium studio summit tunnel
""".split()
PLACES = [p.replace("post office", "post-office") for p in PLACES]

FAMILY = """
aunt:aunts baby brother cousin dad daddy father friend grandma grandpa granny mom mommy mother
neighbor sister teacher uncle
""".split()

PEOPLE = """
baker builder captain chef clown dancer doctor driver farmer firefighter fisherman:fishermen
gardener giant guard hunter juggler king knight librarian mailman:mailmen mayor nurse painter
pilot pirate prince princess queen sailor scientist singer soldier stranger
tailor traveler wizard witch
""".split()

COLORS = """
amber beige black blue bronze brown crimson cream golden gray green indigo ivory lavender lilac
maroon navy olive orange pink purple red scarlet silver tan teal turquoise violet white yellow
""".split()

ADJECTIVES = """
ancient bent big bouncy bright broken bumpy bushy calm cheap chubby clean clever cold colorful
cozy cracked creaky crisp crooked cuddly curly damp dark deep delicate dirty dry dull dusty
empty enormous fancy fast fat fierce fine flat fluffy fragile fresh frozen full fuzzy gentle
giant glittery glossy gooey grand greasy great hairy hard heavy hollow hot huge icy itchy
jolly juicy large leafy light little long loose loud lovely lucky magic messy mighty misty
modern muddy narrow neat new nice noisy odd old pale perfect plain plump pointy polished
pretty prickly proud quick quiet rare rough round royal rusty sandy scratchy shaggy shallow
sharp shiny short silky silly simple skinny slimy slippery slow small smooth snowy soft
soggy solid sparkly special speedy spiky spotted square squeaky squishy steep sticky stiff
strange striped strong sturdy sunny sweet tall tame tangled tasty thick thin tidy tiny tired
tough twisty ugly warm wavy weak wet wide wild windy wise wobbly wooden woolly wrinkled young airy bitter blunt breezy brittle
bulky chilly chipped crumbly dainty dented dim drowsy faded feathery flimsy foamy frilly
frosty gigantic gleaming glowing grimy gritty handy humble lumpy massive mellow mossy musty
nimble patchy peculiar petite quaint ragged rickety rosy rubbery rugged rumpled salty scruffy
shabby sleek slender sour spacious speckled spongy spotless springy stormy stubby swift
tattered tender thorny toasty velvety vivid wiry zesty
""".split()

FEELINGS = """
afraid angry anxious ashamed bored brave calm cheerful confused cross curious delighted
disappointed eager embarrassed excited fearful fond frightened frustrated glad gloomy grateful
grumpy guilty happy hopeful hungry jealous joyful kind lonely nervous patient playful pleased
proud puzzled relieved restless sad scared shy sleepy sorry surprised thankful thirsty
thoughtful tired upset worried
""".split()

ADVERBS = """
angrily anxiously boldly bravely brightly briskly busily calmly carefully cautiously cheerfully
clumsily eagerly easily excitedly fiercely gently gladly gracefully greedily happily hastily
honestly hopefully hungrily joyfully kindly lazily loudly lovingly merrily neatly nervously
noisily patiently playfully politely proudly quickly quietly rapidly sadly shyly silently
slowly softly sleepily smoothly speedily steadily suddenly swiftly tenderly thoughtfully
tightly warmly wearily wildly wisely
""".split()

# base or base:past (irregular or doubled); the object follows the verb
TRANSITIVE = """
bake bring:brought build:built buy:bought carry catch:caught chase clean climb collect cook
cover dig:dug draw:drew drop:dropped dry fetch find:found fix fold follow grab:grabbed hide:hid
hold:held hug:hugged kick kiss lift like lose:lost love make:made mend move open paint pat:patted
pick pull push reach share shake:shook show smell sort spot:spotted squeeze take:took throw:threw
tickle touch wash watch wrap:wrapped admire balance borrow brush count decorate empty fill
guard hammer iron juggle knit:knitted lend:lent measure mix pack peel plant polish
rescue rinse scrub:scrubbed sew steer stir:stirred stack sweep:swept tap:tapped tie untie wave
weigh
""".split()

# verbs used as "<subject> <verb> <preposition phrase>" with no object
INTRANSITIVE = """
bounce cheer clap:clapped crawl cry dance dash dive:dove float giggle glide grin:grinned hop:hopped
hum:hummed hurry jog:jogged jump laugh march nap:napped nod:nodded paddle play race rest roll run:ran
rush sing:sang sit:sat skip:skipped sleep:slept slide:slid smile sneeze splash stroll swim:swam
swing:swung tiptoe trot:trotted twirl wait walk wander whistle wiggle wink yawn blink climb
cough drift flutter gallop gasp hide:hid hike kneel:knelt leap:leapt linger listen lounge
pause peek ramble scamper scurry shiver skate sparkle spin:spun sprint stretch stumble swoop
""".split()

SPEECH = """
announce ask beg:begged call cheer cry explain giggle grumble laugh mumble murmur promise
reply say:said scream shout sigh sing:sang snap:snapped sob:sobbed squeal whisper yell
""".split()

# verbs of feeling or thinking followed by "that"-less clauses or infinitives
WANTS = """
decide hope need plan:planned promise try want wish
""".split()

PREPOSITIONS = """
above across along around behind below beside between by inside near next-to outside over
past under underneath
""".split()
PREPOSITIONS = [p.replace("next-to", "next to") for p in PREPOSITIONS]

TIMES = """
Monday Tuesday Wednesday Thursday Friday Saturday Sunday morning afternoon evening night
spring summer autumn winter weekend holiday birthday
""".split()

WEATHER = """
cloudy foggy frosty rainy snowy stormy sunny windy
""".split()

NUMBERS = """
two three four five six seven eight nine ten eleven twelve twenty many several some few
""".split()


def split_forms(entries: list[str]) -> list[tuple[str, str]]:
    """'mouse:mice' -> ('mouse', 'mice'); 'dog' -> ('dog', '')."""
    return [tuple(entry.split(":")) if ":" in entry else (entry, "") for entry in entries]


def plural(noun: str) -> str:
    """English plural of a regular noun: cat -> cats, box -> boxes, berry -> berries."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def third_person(verb: str) -> str:
    """She ___ : push -> pushes, carry -> carries, play -> plays, go -> goes."""
    if verb.endswith(("s", "x", "z", "ch", "sh", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def past(verb: str) -> str:
    """Regular past tense: jump -> jumped, smile -> smiled, carry -> carried."""
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def gerund(verb: str, past_form: str) -> str:
    """-ing form: jump -> jumping, smile -> smiling, hop (hopped) -> hopping, tie -> tying."""
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    doubled = verb + verb[-1] + "ed"
    if past_form == doubled:
        return verb + verb[-1] + "ing"
    return verb + "ing"


def nouns(entries: list[str]) -> list[tuple[str, str]]:
    """(singular, plural) pairs from entries like 'fox' and 'goose:geese'."""
    return [(s, p or plural(s)) for s, p in split_forms(entries)]


def verbs(entries: list[str]) -> list[tuple[str, str, str, str]]:
    """(base, third person, past, -ing) for entries like 'jump' and 'run:ran'."""
    forms = []
    for base, irregular in split_forms(entries):
        past_form = irregular or past(base)
        forms.append((base, third_person(base), past_form, gerund(base, past_form)))
    return forms
