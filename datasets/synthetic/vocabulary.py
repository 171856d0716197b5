"""The sign vocabulary: class recipes (where the hand goes, along which path, with which shapes).

Recipe ``k`` is drawn from its own generator seeded by ``(seed, CLASS_STREAM, k)``; a
fraction of classes are one-parameter variants of an earlier class (another
handshape, reversed order, another location, ...) so telling classes apart needs the
details a sequence model must learn. Coordinates are in the body frame (origin
between the shoulders, unit = shoulder width, x towards image right, y down, z
towards the camera) for a right-handed signer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.synthetic.hands import HANDSHAPE_WEIGHTS, SIGN_HANDSHAPES
from datasets.synthetic.seeds import CLASS_STREAM, NAME_STREAM

# ----------------------------------------------------------------- signing space
# Palm-centre targets for the dominant (right) hand in the body frame: (x, y, z).
LOCATIONS: dict[str, tuple[float, float, float]] = {
    "forehead": (-0.08, -0.82, 0.35), "temple": (-0.26, -0.74, 0.25), "eye": (-0.12, -0.66, 0.4),
    "nose": (-0.02, -0.58, 0.45), "mouth": (0.0, -0.46, 0.45), "chin": (-0.02, -0.36, 0.45),
    "cheek": (-0.2, -0.5, 0.35), "ear": (-0.3, -0.62, 0.2), "neck": (-0.03, -0.14, 0.35),
    "opposite_shoulder": (0.38, 0.08, 0.3), "chest": (0.0, 0.3, 0.35), "dominant_chest": (-0.3, 0.28, 0.3),
    "stomach": (-0.05, 0.7, 0.4), "neutral": (-0.35, 0.45, 0.8), "neutral_high": (-0.45, 0.1, 0.8),
    "neutral_low": (-0.3, 0.72, 0.7), "side": (-0.85, 0.3, 0.5), "high_side": (-0.7, -0.35, 0.5),
}
_LOCATION_NAMES = tuple(LOCATIONS)
_SPACE_LOW, _SPACE_HIGH = np.array([-1.0, -1.0, 0.0]), np.array([0.7, 0.85, 1.2])  # signing space bounds

MOVEMENTS = ("hold", "line", "arc", "circle", "repeat", "tap", "shake", "zigzag", "path3")
_MOVEMENT_WEIGHTS = np.array([0.6, 1.4, 1.2, 1.2, 1.2, 1.0, 0.8, 0.6, 0.8])
TWO_HANDED = ("none", "symmetric", "alternating", "base")
_TWO_HANDED_WEIGHTS = np.array([0.55, 0.18, 0.09, 0.18])
_OSCILLATING = ("circle", "repeat", "tap", "shake", "zigzag")
_BASE_SHAPES = ("B", "5", "S", "1", "C", "bent_B")
HEAD_MOVEMENTS = ("none", "nod", "shake")

# (roll, pitch, yaw) in degrees the dominant hand commonly takes.
_ORIENTATIONS = np.array([
    (15, 0, 0), (15, 0, 180), (10, 0, -90), (35, 20, -60), (80, 60, 0), (90, 10, -90),
    (60, 70, 180), (-20, 10, 30), (0, 45, -45), (100, 30, 150),
], dtype=float)

@dataclass(frozen=True)
class SignRecipe:
    """What defines one sign (class); every length is in shoulder widths, angles in degrees."""

    gloss: str
    movement: str
    keypoints: tuple                    # ((x, y, z), ...) palm-centre targets, dominant hand
    location_names: tuple               # names the keypoints were derived from
    handshapes: tuple                   # 1 or 2 names from HANDSHAPES
    change_at: float                    # core-time fraction of the handshape change
    orientation: tuple                  # (roll, pitch, yaw) at the start
    orientation_end: tuple              # ... at the end of the core movement
    cycles: float = 1.0                 # repetitions / turns / oscillations
    size: float = 0.0                   # radius, bulge, tap distance or shake amplitude
    direction: float = 1.0              # +1 / -1: sense of rotation or bulge side
    tilt: float = 0.0                   # circle / shake axis angle in the image plane
    two_handed: str = "none"
    base_location: tuple = (0.0, 0.0, 0.0)  # non-dominant hand (own-side coordinates) for "base"
    base_handshape: str = "B"
    base_orientation: tuple = (0.0, 0.0, 0.0)
    head: str = "none"
    parent: int = -1                    # class this one is a one-parameter variant of
    variation: str = ""

# ------------------------------------------------------------------- recipes
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _gloss_name(rng: np.random.Generator, taken: set) -> str:
    """A pronounceable made-up word (CV syllables), unique among ``taken``."""
    for attempt in range(1000):
        syllables = 2 + int(rng.random() < 0.45) + (attempt // 200)
        word = "".join(_CONSONANTS[rng.integers(len(_CONSONANTS))] + _VOWELS[rng.integers(len(_VOWELS))]
                       for _ in range(syllables))
        if word not in taken:
            return word
    raise RuntimeError("could not find an unused gloss name")


def _choice(rng, options, weights=None):
    p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    return options[int(rng.choice(len(options), p=p))]


def _pick_location(rng, exclude=()) -> str:
    names = [n for n in _LOCATION_NAMES if n not in exclude]
    return names[int(rng.integers(len(names)))]


def _displaced(rng, start: np.ndarray) -> np.ndarray:
    """A second keypoint 0.25-0.6 shoulder widths from ``start`` in one of 8 directions."""
    angle = rng.integers(8) * np.pi / 4 + rng.normal(0, 0.15)
    length = rng.uniform(0.25, 0.6)
    return start + np.array([np.cos(angle) * length, np.sin(angle) * length, rng.uniform(-0.15, 0.15)])


def _keypoints_for(rng, movement: str, start_name: str, base=None):
    """Keypoints and their names for a movement starting at a named location (or on a base hand)."""
    start = np.array(LOCATIONS[start_name]) if base is None else base
    names = [start_name]
    if movement in ("line", "arc", "repeat", "zigzag"):
        if rng.random() < 0.5 and base is None:
            end_name = _pick_location(rng, exclude=(start_name,))
            second = np.array(LOCATIONS[end_name])
            if np.linalg.norm(second[:2] - start[:2]) < 0.2:
                second = _displaced(rng, start)
                end_name = "displaced"
        else:
            second, end_name = _displaced(rng, start), "displaced"
        return (start, second), (*names, end_name)
    if movement == "path3":
        second_name = _pick_location(rng, exclude=(start_name,)) if base is None else "displaced"
        second = np.array(LOCATIONS[second_name]) if base is None else _displaced(rng, start)
        third = _displaced(rng, second)
        return (start, second, third), (*names, second_name, "displaced")
    return (start,), tuple(names)


def _movement_params(rng, movement: str) -> dict:
    if movement == "circle":
        return dict(cycles=float(rng.choice([1, 1, 2])), size=rng.uniform(0.12, 0.28),
                    direction=float(rng.choice([-1, 1])), tilt=rng.uniform(0, np.pi))
    if movement == "repeat":
        return dict(cycles=float(rng.choice([2, 2, 3])))
    if movement == "tap":
        return dict(cycles=float(rng.choice([1, 2, 2, 3])), size=rng.uniform(0.1, 0.2), tilt=rng.uniform(0, 2 * np.pi))
    if movement == "shake":
        return dict(cycles=float(rng.choice([2, 3, 4])), size=rng.uniform(0.05, 0.12), tilt=rng.uniform(0, np.pi))
    if movement == "zigzag":
        return dict(cycles=float(rng.choice([2, 3])), size=rng.uniform(0.08, 0.16))
    if movement == "arc":
        return dict(size=rng.uniform(0.12, 0.3), direction=float(rng.choice([-1, 1])))
    return {}


def _orientations(rng, change: bool):
    start = _ORIENTATIONS[rng.integers(len(_ORIENTATIONS))] + rng.normal(0, 8, 3)
    end = start.copy()
    if change:
        axis = rng.choice(3, p=[0.35, 0.2, 0.45])
        magnitude = {0: rng.uniform(45, 100), 1: rng.uniform(40, 75), 2: rng.uniform(90, 170)}[int(axis)]
        end[axis] += magnitude * rng.choice([-1, 1])
    return tuple(np.round(start, 3)), tuple(np.round(end, 3))


def _fresh_recipe(rng, gloss: str) -> dict:
    two_handed = _choice(rng, TWO_HANDED, _TWO_HANDED_WEIGHTS)
    movement = _choice(rng, MOVEMENTS, _MOVEMENT_WEIGHTS)
    if two_handed == "alternating" and movement not in _OSCILLATING:
        movement = _choice(rng, ("circle", "repeat", "tap"))
    base = base_loc = None
    recipe = dict(gloss=gloss, two_handed=two_handed, head="none")
    if two_handed == "base":
        base_own = np.array([rng.uniform(-0.2, 0.05), rng.uniform(0.35, 0.65), 0.75])
        base_loc = base_own * np.array([-1, 1, 1])  # where the base hand is, in the dominant frame
        base = base_loc + np.array([rng.normal(-0.05, 0.05), -rng.uniform(0.1, 0.22), 0.0])
        recipe.update(base_location=tuple(np.round(base_own, 4)),
                      base_handshape=_BASE_SHAPES[rng.integers(len(_BASE_SHAPES))],
                      base_orientation=(float(rng.uniform(60, 100)), float(rng.uniform(50, 85)),
                                        float(rng.choice([0.0, 180.0]))))
        start_name = "base_hand"
    elif two_handed in ("symmetric", "alternating"):
        start_name = _choice(rng, ("neutral", "neutral_high", "neutral_low", "chest", "dominant_chest",
                                   "side", "high_side", "temple", "cheek", "stomach"))
    else:
        start_name = _pick_location(rng)
    keypoints, names = _keypoints_for(rng, movement, start_name, base)
    n_shapes = 2 if (rng.random() < 0.35 or movement == "hold") else 1
    shapes = [_choice(rng, SIGN_HANDSHAPES, HANDSHAPE_WEIGHTS)]
    if n_shapes == 2:
        shapes.append(_choice(rng, [s for s in SIGN_HANDSHAPES if s != shapes[0]]))
    change_orientation = rng.random() < (0.6 if movement == "hold" else 0.3)
    orientation, orientation_end = _orientations(rng, change_orientation)
    recipe.update(movement=movement, keypoints=tuple(tuple(np.round(k, 4)) for k in keypoints),
                  location_names=names, handshapes=tuple(shapes), change_at=float(rng.uniform(0.35, 0.65)),
                  orientation=orientation, orientation_end=orientation_end, **_movement_params(rng, movement))
    if rng.random() < 0.12:
        recipe["head"] = _choice(rng, HEAD_MOVEMENTS[1:])
    return recipe


_VARIATIONS = ("handshape", "location", "reverse", "movement", "orientation", "two_handed")
_VARIATION_WEIGHTS = np.array([3, 2, 1.5, 2, 1, 1])


def _variant_recipe(rng, parent: dict, parent_index: int, gloss: str) -> dict:
    """Copy ``parent`` and change exactly one aspect: a minimal pair for the two classes."""
    recipe = dict(parent, gloss=gloss, parent=parent_index)
    kind = _choice(rng, _VARIATIONS, _VARIATION_WEIGHTS)
    if kind == "reverse" and (len(recipe["keypoints"]) < 2 and recipe["movement"] not in ("circle",)
                              and len(recipe["handshapes"]) < 2):
        kind = "handshape"
    if kind == "two_handed" and recipe["two_handed"] == "base":
        kind = "location"
    if kind == "location" and recipe["two_handed"] == "base":
        kind = "handshape"
    recipe["variation"] = kind
    if kind == "handshape":
        i = int(rng.integers(len(recipe["handshapes"])))
        shapes = list(recipe["handshapes"])
        shapes[i] = _choice(rng, [s for s in SIGN_HANDSHAPES if s not in shapes])
        recipe["handshapes"] = tuple(shapes)
    elif kind == "location":
        target = LOCATIONS[_pick_location(rng, exclude=recipe["location_names"][:1])]
        shift = np.array(target) - np.array(recipe["keypoints"][0])
        if np.linalg.norm(shift[:2]) < 0.25:
            shift[:2] *= 0.25 / max(np.linalg.norm(shift[:2]), 1e-6)
        recipe["keypoints"] = tuple(tuple(np.round(np.array(k) + shift, 4)) for k in recipe["keypoints"])
        recipe["location_names"] = ("shifted",) + tuple(recipe["location_names"][1:])
    elif kind == "reverse":
        if len(recipe["keypoints"]) >= 2:
            recipe["keypoints"] = tuple(reversed(recipe["keypoints"]))
            recipe["location_names"] = tuple(reversed(recipe["location_names"]))
        elif recipe["movement"] == "circle":
            recipe["direction"] = -recipe["direction"]
        if len(recipe["handshapes"]) == 2:
            recipe["handshapes"] = tuple(reversed(recipe["handshapes"]))
        recipe["orientation"], recipe["orientation_end"] = recipe["orientation_end"], recipe["orientation"]
    elif kind == "movement":
        options = [m for m in MOVEMENTS if m != recipe["movement"] and m != "path3"]
        if recipe["two_handed"] == "alternating":
            options = [m for m in options if m in _OSCILLATING]
        movement = _choice(rng, options)
        start = np.array(recipe["keypoints"][0])
        if movement in ("line", "arc", "repeat", "zigzag"):
            second = np.array(recipe["keypoints"][1]) if len(recipe["keypoints"]) > 1 else _displaced(rng, start)
            keypoints = (start, second)
        else:
            keypoints = (start,)
        for key in ("cycles", "size", "direction", "tilt"):
            recipe.pop(key, None)
        recipe.update(movement=movement, keypoints=tuple(tuple(np.round(k, 4)) for k in keypoints),
                      location_names=tuple(recipe["location_names"][:len(keypoints)]),
                      **_movement_params(rng, movement))
        if movement == "hold" and len(recipe["handshapes"]) == 1 and recipe["orientation"] == recipe["orientation_end"]:
            recipe["handshapes"] = (recipe["handshapes"][0], _choice(rng, [s for s in SIGN_HANDSHAPES
                                                                           if s != recipe["handshapes"][0]]))
    elif kind == "orientation":
        recipe["orientation"], recipe["orientation_end"] = _orientations(rng, rng.random() < 0.5)
    else:  # two_handed: one-handed <-> symmetric
        recipe["two_handed"] = "symmetric" if recipe["two_handed"] == "none" else "none"
    return recipe


def make_recipes(num_classes: int, seed: int = 0, variant_fraction: float = 0.4) -> list[SignRecipe]:
    """Class recipes ``0..num_classes-1``; recipe ``k`` depends only on ``seed`` and classes < k."""
    recipes: list[dict] = []
    names: set = set()
    for k in range(num_classes):
        rng = np.random.default_rng([seed, CLASS_STREAM, k])
        gloss = _gloss_name(np.random.default_rng([seed, NAME_STREAM, k]), names)
        names.add(gloss)
        if k > 0 and rng.random() < variant_fraction:
            parent = int(rng.integers(k))
            recipes.append(_variant_recipe(rng, recipes[parent], parent, gloss))
        else:
            recipes.append(_fresh_recipe(rng, gloss))
    out = []
    for r in recipes:
        clean = {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in r.items()}
        keypoints = np.clip(np.array(clean["keypoints"], dtype=np.float64), _SPACE_LOW, _SPACE_HIGH)
        clean["keypoints"] = tuple(tuple(float(c) for c in k) for k in keypoints)
        clean["orientation"] = tuple(float(c) for c in clean["orientation"])
        clean["orientation_end"] = tuple(float(c) for c in clean["orientation_end"])
        clean["base_location"] = tuple(float(c) for c in clean.get("base_location", (0.0, 0.0, 0.0)))
        clean["base_orientation"] = tuple(float(c) for c in clean.get("base_orientation", (0.0, 0.0, 0.0)))
        out.append(SignRecipe(**clean))
    return out
