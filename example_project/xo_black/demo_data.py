"""Static reference data for ``seed_demo``: cities, categories, tags and name parts.

Kept apart from the command so the vocabulary can be read (and extended) without wading
through the generator. Everything here is plain data; order matters only in that the
generator indexes these tuples, so appending keeps existing seeds' output stable.
"""

from __future__ import annotations

from typing import NamedTuple


class City(NamedTuple):
    """A city centre (real coordinates), its share of the data and how far it sprawls."""

    name: str
    latitude: float
    longitude: float
    weight: float
    spread_km: float


class CategorySpec(NamedTuple):
    """A business category, how common it is, its tag group and the nouns for its names."""

    name: str
    weight: float
    group: str
    nouns: tuple[str, ...]


CITIES: tuple[City, ...] = (
    City("Atlanta", 33.7490, -84.3880, 1.6, 6.0),
    City("Houston", 29.7604, -95.3698, 1.2, 8.0),
    City("Chicago", 41.8781, -87.6298, 1.2, 7.0),
    City("New York", 40.7128, -74.0060, 1.5, 6.0),
    City("Los Angeles", 34.0522, -118.2437, 1.1, 8.0),
    City("Washington", 38.9072, -77.0369, 1.0, 5.0),
    City("Detroit", 42.3314, -83.0458, 0.8, 6.0),
    City("Oakland", 37.8044, -122.2712, 0.6, 4.0),
    City("Charlotte", 35.2271, -80.8431, 0.7, 6.0),
    City("Memphis", 35.1495, -90.0490, 0.6, 5.0),
    City("New Orleans", 29.9511, -90.0715, 0.6, 4.0),
    City("Baltimore", 39.2904, -76.6122, 0.6, 4.0),
)

CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec("Restaurant", 3.0, "food", ("Kitchen", "Table", "Eatery", "Bistro")),
    CategorySpec("Soul Food", 2.0, "food", ("Kitchen", "Soul Food", "Supper Club", "Skillet")),
    CategorySpec("Caribbean Cuisine", 1.2, "food", ("Jerk Shack", "Island Grill", "Kitchen")),
    CategorySpec("African Cuisine", 1.0, "food", ("Kitchen", "Suya Spot", "Jollof House")),
    CategorySpec("Barbecue", 1.0, "food", ("BBQ", "Smokehouse", "Pit", "Rib Shack")),
    CategorySpec("Bakery", 1.0, "food", ("Bakery", "Sweets", "Pastry Shop", "Cake Studio")),
    CategorySpec("Coffee Shop", 1.5, "food", ("Coffee", "Café", "Roasters", "Espresso Bar")),
    CategorySpec("Juice Bar", 0.6, "food", ("Juice Bar", "Smoothies", "Squeeze")),
    CategorySpec("Food Truck", 0.6, "food", ("Truck", "Street Eats", "On Wheels")),
    CategorySpec("Catering", 0.6, "food", ("Catering", "Events Kitchen", "Provisions")),
    CategorySpec("Bar & Lounge", 1.0, "food", ("Lounge", "Bar", "Taproom", "Social Club")),
    CategorySpec("Barbershop", 2.0, "beauty", ("Cuts", "Barbershop", "Fades", "Grooming")),
    CategorySpec("Hair Salon", 2.0, "beauty", ("Salon", "Hair Studio", "Tresses", "Curls")),
    CategorySpec("Braiding Studio", 1.0, "beauty", ("Braids", "Braid Bar", "Locs & Twists")),
    CategorySpec("Nail Salon", 0.8, "beauty", ("Nails", "Nail Lounge", "Polish Bar")),
    CategorySpec("Spa & Wellness", 0.8, "beauty", ("Spa", "Wellness", "Retreat")),
    CategorySpec("Skincare", 0.7, "beauty", ("Skin", "Glow Bar", "Skin Studio")),
    CategorySpec("Cosmetics", 0.6, "retail", ("Beauty", "Cosmetics", "Glam")),
    CategorySpec("Fitness Studio", 1.2, "fitness", ("Fitness", "Gym", "Strength Lab")),
    CategorySpec("Yoga Studio", 0.6, "fitness", ("Yoga", "Flow Studio", "Breathe")),
    CategorySpec("Martial Arts", 0.4, "fitness", ("Dojo", "Boxing Club", "Martial Arts")),
    CategorySpec("Bookstore", 0.7, "retail", ("Books", "Bookshop", "Reading Room")),
    CategorySpec("Art Gallery", 0.5, "retail", ("Gallery", "Art House", "Collective")),
    CategorySpec("Clothing Boutique", 1.3, "retail", ("Boutique", "Threads", "Apparel")),
    CategorySpec("Sneaker Shop", 0.5, "retail", ("Kicks", "Sneakers", "Sole Shop")),
    CategorySpec("Jewelry", 0.6, "retail", ("Jewelry", "Gems", "Adornments")),
    CategorySpec("Home Decor", 0.5, "retail", ("Home", "Interiors", "Living")),
    CategorySpec("Florist", 0.4, "retail", ("Flowers", "Blooms", "Florals")),
    CategorySpec("Photography", 0.5, "services", ("Photography", "Studios", "Lens")),
    CategorySpec("Event Planning", 0.5, "services", ("Events", "Celebrations", "Affairs")),
    CategorySpec("Music Studio", 0.4, "services", ("Sound", "Records", "Music Studio")),
    CategorySpec("Tech Services", 0.6, "services", ("Tech", "Digital", "Labs", "IT")),
    CategorySpec("Financial Services", 0.6, "services", ("Financial", "Tax & Accounting")),
    CategorySpec("Legal Services", 0.4, "services", ("Law Group", "Legal", "Advocates")),
    CategorySpec("Real Estate", 0.6, "services", ("Realty", "Properties", "Homes Group")),
    CategorySpec("Tutoring & Education", 0.5, "services", ("Academy", "Learning Center")),
    CategorySpec("Childcare", 0.4, "services", ("Kids Club", "Daycare", "Little Learners")),
    CategorySpec("Auto Repair", 0.5, "services", ("Auto", "Motors", "Garage")),
    CategorySpec("Cleaning Services", 0.5, "services", ("Cleaning Co.", "Maids", "Sparkle")),
    CategorySpec("Health Clinic", 0.5, "services", ("Health", "Clinic", "Family Care")),
)

#: Tags that fit a category's group; a business draws most of its tags from here.
GROUP_TAGS: dict[str, tuple[str, ...]] = {
    "food": (
        "vegan", "vegetarian-friendly", "halal", "gluten-free", "brunch", "late-night",
        "takeout", "delivery", "outdoor-seating", "live-music", "happy-hour",
        "farm-to-table", "spicy", "desserts", "catering",
    ),
    "beauty": (
        "natural-hair", "locs", "braids", "fades", "walk-ins", "appointment-only",
        "kids-cuts", "organic-products", "lashes", "eyebrows",
    ),
    "fitness": (
        "hiit", "boxing", "personal-training", "group-classes", "beginner-friendly",
        "dance", "open-24-hours",
    ),
    "retail": (
        "handmade", "local-artists", "vintage", "sustainable", "gifts", "streetwear",
        "plus-size", "online-shop",
    ),
    "services": (
        "free-consultation", "bilingual", "same-day", "licensed", "mobile-service",
        "online-booking", "evening-hours",
    ),
}

#: Tags any business may carry.
GENERIC_TAGS: tuple[str, ...] = (
    "family-owned", "women-owned", "veteran-owned", "lgbtq-friendly",
    "wheelchair-accessible", "free-wifi", "parking", "new-opening", "award-winning",
    "community-favorite",
)

#: Every tag, in a fixed order (the generator's one-hot columns).
TAG_VOCAB: tuple[str, ...] = tuple(
    dict.fromkeys([t for tags in GROUP_TAGS.values() for t in tags] + list(GENERIC_TAGS))
)

#: First halves of business names ("Soul" + "Kitchen").
NAME_PREFIXES: tuple[str, ...] = (
    "Soul", "Harlem", "Kente", "Roots", "Crown", "Heritage", "Unity", "Legacy", "Ebony",
    "Sankofa", "Nubian", "Queen's", "King's", "Golden", "Blessed", "Mama's", "Uptown",
    "Southside", "Westside", "Motown", "Bayou", "Peach State", "Magnolia", "Jubilee",
    "Freedom", "Kingdom", "Royal", "Amani", "Zuri", "Imani", "Ujima", "Jazz", "Rhythm",
    "Honey", "Sweet", "Brown Sugar", "Midnight", "Sunrise", "Juneteenth", "Diaspora",
    "Melanin", "Brownstone", "Sister", "Brother", "Grandma's", "Uncle Ray's", "Big Mike's",
    "Lady J's", "Black Pearl", "Onyx",
)

FIRST_NAMES: tuple[str, ...] = (
    "Aaliyah", "Jamal", "Keisha", "Malik", "Imani", "Darnell", "Nia", "Andre", "Zora",
    "Marcus", "Tasha", "Jerome", "Ebony", "Tyrone", "Amara", "Kwame", "Jasmine", "Terrence",
    "Ayana", "Devon", "Naomi", "Isaiah", "Simone", "Xavier", "Chanel", "Elijah", "Kendra",
    "Desmond", "Latoya", "Cedric",
)

LAST_NAMES: tuple[str, ...] = (
    "Johnson", "Williams", "Brown", "Jackson", "Davis", "Harris", "Robinson", "Washington",
    "Jefferson", "Thomas", "Moore", "Walker", "Coleman", "Banks", "Freeman", "Bell",
    "Okafor", "Mensah", "Diallo", "Baptiste",
)
