//! Random run names in MLflow's `adjective-animal-NNN` style, for runs created without one.

use rand::seq::IndexedRandom;
use rand::Rng;

const ADJECTIVES: &[&str] = &[
    "abundant", "agreeable", "amazing", "ambitious", "bemused", "blushing", "bold", "brave",
    "bright", "calm", "capable", "carefree", "caring", "casual", "classy", "clean", "clever",
    "colorful", "crawling", "dapper", "defiant", "delicate", "efficient", "enchanting", "fearless",
    "funny", "gentle", "gregarious", "handsome", "honorable", "illustrious", "indecisive",
    "judicious", "learned", "legendary", "likeable", "loud", "luminous", "marvelous", "masked",
    "melodic", "merciful", "mercurial", "nebulous", "omniscient", "orderly", "overjoyed",
    "peaceful", "polite", "popular", "puzzled", "resilient", "righteous", "rogue", "rumbling",
    "salty", "secretive", "selective", "sedate", "serious", "shivering", "skillful", "smiling",
    "sneaky", "spiffy", "stately", "suave", "thoughtful", "traveling", "trusting", "unequaled",
    "upbeat", "valuable", "victorious", "vigorous", "welcoming", "whimsical", "wise", "youthful",
];

const ANIMALS: &[&str] = &[
    "ant", "ape", "asp", "auk", "bass", "bat", "bear", "bee", "bird", "boar", "bug", "calf",
    "carp", "cat", "chimp", "cod", "colt", "conch", "cow", "crab", "crane", "croc", "crow", "cub",
    "deer", "doe", "dog", "dolphin", "donkey", "dove", "duck", "eel", "elk", "fawn", "finch",
    "fish", "flea", "fly", "foal", "fowl", "fox", "frog", "gnat", "gnu", "goat", "goose", "grouse",
    "grub", "gull", "hare", "hawk", "hen", "hog", "horse", "hound", "jay", "kit", "kite", "koi",
    "lamb", "lark", "loon", "lynx", "mare", "midge", "mink", "mole", "moose", "moth", "mouse",
    "mule", "newt", "owl", "ox", "panda", "penguin", "perch", "pig", "pug", "quail", "ram", "rat",
    "ray", "robin", "roo", "rook", "seal", "shad", "shark", "sheep", "shoat", "shrew", "shrike",
    "shrimp", "skink", "skunk", "sloth", "slug", "smelt", "snail", "snake", "snipe", "sow", "sponge",
    "squid", "squirrel", "stag", "steed", "stoat", "stork", "swan", "tern", "toad", "trout",
    "turtle", "vole", "wasp", "whale", "wolf", "worm", "wren", "yak", "zebra",
];

pub fn generate() -> String {
    let mut rng = rand::rng();
    format!(
        "{}-{}-{}",
        ADJECTIVES.choose(&mut rng).unwrap_or(&"brave"),
        ANIMALS.choose(&mut rng).unwrap_or(&"owl"),
        rng.random_range(0..1000)
    )
}
