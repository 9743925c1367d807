"""The ResNet48 search space: variants, arch codes, sampling, and analytic FLOPs/params.

This module implements `docs/SEARCH_SPACE.md` (the CVPR 2022 Lightweight NAS Track 1 space).
It is pure Python + NumPy: importing it does not import TensorFlow.

Usage::

    from tfnas import search_space as ss

    space = ss.get_space("fmnist")
    arch = space.parse("1252233313000000223212122253130000000000006515000000")
    arch.depths, arch.stem, arch.mids, arch.outs      # the decoded arch
    arch.code                                         # back to the identical 52-digit code
    space.widths(arch)                                # channel widths of every conv
    space.flops(arch), space.params(arch)             # MACs and Keras count_params()
    archs = space.sample_many(100, seed=0)            # uniform, deterministic
    child = space.mutate(arch, np.random.default_rng(0), prob=0.1)

Code layout (52 digits)::

    position 0        resolution index (1-based into `SearchSpace.resolutions`)
    positions 1..4    depths d1..d4   (d1, d2, d4 in 2..5; d3 in 2..8)
    position 5        stem width digit
    positions 6..51   23 block slots of two digits (mid, out): slot j -> 6 + 2j, 7 + 2j;
                      stage i owns slots SLOT_OFFSETS[i] .. SLOT_OFFSETS[i] + MAX_DEPTHS[i] - 1

A width digit ``k`` (1..7) means the ratio ``WIDTH_RATIOS[k - 1]`` of the stage's base width.
Every malformed code raises `ValueError` naming the 0-based position, the field, what was
found, the rule broken and how to fix it; a network is never built from an invalid code.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np

WIDTH_RATIOS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)
NUM_WIDTHS = len(WIDTH_RATIOS)
NUM_STAGES = 4
MIN_DEPTHS = (2, 2, 2, 2)
MAX_DEPTHS = (5, 5, 8, 5)
CODE_LENGTH = 52
# First block slot of each stage; slot j -> digits 6 + 2j (mid) and 7 + 2j (out).
SLOT_OFFSETS = (0, 5, 10, 18)
NUM_SLOTS = sum(MAX_DEPTHS)  # 23
RES_POS = 0
DEPTH_POS = (1, 2, 3, 4)
STEM_POS = 5
FIRST_SLOT_POS = 6

_DIGITS = frozenset("0123456789")


def make_divisible(v: float, divisor: int) -> int:
    """Rounds a width to a multiple of ``divisor`` (the MobileNet rule the competition used).

    ``max(divisor, int(v + divisor / 2) // divisor * divisor)``, plus ``divisor`` when that
    is below ``0.9 * v`` (never round down by more than 10%).

    Args:
        v: the unrounded width, e.g. ``base * ratio``.
        divisor: the multiple (8 for ImageNet, 1 for the small-image variants).

    Returns:
        The rounded width as a Python int.
    """
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


def slot_positions(stage: int, block: int) -> tuple[int, int]:
    """Code positions (mid, out) of block ``block`` (0-based) of stage ``stage`` (0-based)."""
    slot = SLOT_OFFSETS[stage] + block
    return FIRST_SLOT_POS + 2 * slot, FIRST_SLOT_POS + 2 * slot + 1


def describe_position(pos: int) -> str:
    """Human name of a code position, e.g. ``"stage 3 block 2 mid digit"`` (1-based names)."""
    if pos == RES_POS:
        return "resolution index"
    if pos in DEPTH_POS:
        return f"stage {pos} depth"
    if pos == STEM_POS:
        return "stem digit"
    if FIRST_SLOT_POS <= pos < CODE_LENGTH:
        slot, which = divmod(pos - FIRST_SLOT_POS, 2)
        stage = max(i for i in range(NUM_STAGES) if SLOT_OFFSETS[i] <= slot)
        block = slot - SLOT_OFFSETS[stage]
        return f"stage {stage + 1} block {block + 1} {'out' if which else 'mid'} digit"
    return f"position {pos} (past the end)"


def _bad(pos: int, found, rule: str, fix: str) -> ValueError:
    return ValueError(
        f"Invalid arch code at position {pos} ({describe_position(pos)}): found {found}; "
        f"{rule}. {fix}"
    )


def _check_width_digit(pos: int, d: int, stage: int | None = None, depth: int = 0) -> None:
    """Width digit rules; ``stage`` (0-based) is None for the stem digit."""
    if d == 0 and stage is None:
        raise _bad(
            pos,
            "0",
            f"the stem digit is a width digit 1..{NUM_WIDTHS}",
            f"Use a digit in 1..{NUM_WIDTHS}, equal to stage 1's out digits.",
        )
    if d == 0:
        block = (pos - FIRST_SLOT_POS) // 2 - SLOT_OFFSETS[stage] + 1
        raise _bad(
            pos,
            f"0 in an active slot (stage {stage + 1} has depth {depth}, so block {block} is used)",
            f"every digit of an active slot is a width digit 1..{NUM_WIDTHS}; 0 only marks the "
            "unused slots past a stage's depth",
            f"Use a width digit 1..{NUM_WIDTHS}, or lower the stage {stage + 1} depth (position "
            f"{DEPTH_POS[stage]}) so the slot is unused.",
        )
    if d > NUM_WIDTHS:
        raise _bad(
            pos,
            f"{d}",
            f"width digits are 1..{NUM_WIDTHS} (ratios {', '.join(map(str, WIDTH_RATIOS))})",
            f"Use a digit in 1..{NUM_WIDTHS}.",
        )


_WIDTH_CHARS = frozenset("1234567")
_DEPTH_CHARS = tuple(
    frozenset(str(d) for d in range(lo, hi + 1)) for lo, hi in zip(MIN_DEPTHS, MAX_DEPTHS)
)
_STAGE_SPANS = tuple(
    (FIRST_SLOT_POS + 2 * off, FIRST_SLOT_POS + 2 * (off + n))
    for off, n in zip(SLOT_OFFSETS, MAX_DEPTHS)
)


def _is_valid_fast(code, num_resolutions: int) -> bool:
    """True when ``code`` is valid; string slicing only, so 45,000 codes parse in ~0.5 s.

    A False sends the code through `_validate_digits`, which finds and explains the error.
    """
    if type(code) is not str or len(code) != CODE_LENGTH:
        return False
    if not "1" <= code[0] <= "9" or int(code[0]) > num_resolutions:
        return False
    out = code[STEM_POS]  # Stage 1's out must equal the stem digit.
    if out not in _WIDTH_CHARS:
        return False
    for i, (start, stop) in enumerate(_STAGE_SPANS):
        if code[1 + i] not in _DEPTH_CHARS[i]:
            return False
        end = start + 2 * int(code[1 + i])
        if i > 0:
            out = code[start + 1]
        if (
            code[start + 1 : end : 2] != out * (end - start >> 1)
            or out not in _WIDTH_CHARS
            or not _WIDTH_CHARS.issuperset(code[start:end:2])
            or code[end:stop].strip("0")
        ):
            return False
    return True


def _validate_digits(code, num_resolutions: int, space_name: str | None) -> tuple[int, ...]:
    """Checks ``code`` against every rule and returns its digits (raises ValueError)."""
    if _is_valid_fast(code, num_resolutions):
        return tuple(map(_DIGIT_VALUE, code))
    if not isinstance(code, str):
        raise ValueError(
            f"An arch code must be a str of {CODE_LENGTH} digits; received "
            f"{type(code).__name__} {code!r:.80}. Pass the code as a string (e.g. from "
            "`arch.code`)."
        )
    if len(code) != CODE_LENGTH:
        raise ValueError(
            f"Invalid arch code {code!r:.80}: length is {len(code)}, expected "
            f"{CODE_LENGTH} digits (res + 4 depths + stem + 23 slots x 2). Check for missing, "
            "extra or truncated digits (e.g. a lost leading digit or trailing whitespace)."
        )
    if not _DIGITS.issuperset(code):
        pos = next(i for i, c in enumerate(code) if c not in _DIGITS)
        raise _bad(
            pos,
            f"{code[pos]!r}",
            "an arch code contains only the digits 0-9",
            "Remove separators, spaces or other characters from the code.",
        )
    digits = tuple(map(int, code))  # int() of "0".."9"; ASCII was checked above.
    where = f"space {space_name!r} has" if space_name else "there are"
    if not 1 <= digits[RES_POS] <= num_resolutions:
        raise _bad(
            RES_POS,
            f"{digits[RES_POS]}",
            f"the resolution index is 1-based and {where} {num_resolutions} resolution(s), so "
            f"it must be in 1..{num_resolutions}",
            f"Set digit 0 to a value in 1..{num_resolutions} (1 for single-resolution spaces).",
        )
    depths = digits[1:5]
    for i, d in enumerate(depths):
        if not MIN_DEPTHS[i] <= d <= MAX_DEPTHS[i]:
            raise _bad(
                DEPTH_POS[i],
                f"{d}",
                f"stage {i + 1} depth must be in {MIN_DEPTHS[i]}..{MAX_DEPTHS[i]}",
                f"Use a depth in {MIN_DEPTHS[i]}..{MAX_DEPTHS[i]} and fill the slots to match.",
            )
    _check_width_digit(STEM_POS, digits[STEM_POS])
    for i in range(NUM_STAGES):
        depth = depths[i]
        first_out_pos = None
        for b in range(MAX_DEPTHS[i]):
            mid_pos, out_pos = slot_positions(i, b)
            if b < depth:
                _check_width_digit(mid_pos, digits[mid_pos], i, depth)
                _check_width_digit(out_pos, digits[out_pos], i, depth)
                if first_out_pos is None:
                    first_out_pos = out_pos
                elif digits[out_pos] != digits[first_out_pos]:
                    raise _bad(
                        out_pos,
                        f"{digits[out_pos]} but block 1's out digit (position {first_out_pos}) "
                        f"is {digits[first_out_pos]}",
                        f"all out digits of stage {i + 1} must be equal (the residual adds share "
                        "one width)",
                        f"Set every out digit of stage {i + 1} to the same digit.",
                    )
            else:
                for pos in (mid_pos, out_pos):
                    if digits[pos] != 0:
                        raise _bad(
                            pos,
                            f"{digits[pos]} in an inactive slot (stage {i + 1} has depth "
                            f"{depth}, so block {b + 1} is unused)",
                            "every slot past a stage's depth must be 00",
                            f"Set positions {mid_pos}-{out_pos} to 00, or raise the stage "
                            f"{i + 1} depth (position {DEPTH_POS[i]}) to include the block.",
                        )
    first_out = slot_positions(0, 0)[1]
    if digits[first_out] != digits[STEM_POS]:
        raise _bad(
            first_out,
            f"{digits[first_out]} but the stem digit (position {STEM_POS}) is {digits[STEM_POS]}",
            "stage 1's out digit must equal the stem digit (stage 1 adds to the stem's output "
            "through identity shortcuts)",
            "Set the stem digit and all stage 1 out digits to the same digit.",
        )
    return digits


@dataclasses.dataclass(frozen=True)
class Arch:
    """One subnet of the space: an immutable, hashable, always-valid arch.

    Build one from a code with `SearchSpace.parse` (checks the resolution index against the
    space) or `Arch.from_code`; constructing it directly validates the fields too.

    Attributes:
        resolution: 1-based index into the space's ``resolutions``.
        depths: blocks per stage; d1, d2, d4 in 2..5, d3 in 2..8.
        stem: stem width digit 1..7.
        mids: per stage, one conv1 width digit 1..7 per block (``len(mids[i]) == depths[i]``).
        outs: per stage, the shared conv2 width digit; ``outs[0] == stem``.
    """

    resolution: int
    depths: tuple[int, int, int, int]
    stem: int
    mids: tuple[tuple[int, ...], ...]
    outs: tuple[int, int, int, int]

    def __post_init__(self):
        # Normalise lists / NumPy ints to tuples of Python ints so equality and hashing work.
        try:
            object.__setattr__(self, "resolution", int(self.resolution))
            object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
            object.__setattr__(self, "stem", int(self.stem))
            object.__setattr__(self, "mids", tuple(tuple(int(m) for m in s) for s in self.mids))
            object.__setattr__(self, "outs", tuple(int(o) for o in self.outs))
        except (TypeError, ValueError) as e:
            raise ValueError(f"Arch fields must be ints / tuples of ints: {e}") from None
        if len(self.depths) != NUM_STAGES or len(self.outs) != NUM_STAGES:
            raise ValueError(
                f"Arch needs {NUM_STAGES} depths and {NUM_STAGES} outs; received "
                f"depths={self.depths}, outs={self.outs}."
            )
        if len(self.mids) != NUM_STAGES or any(len(m) != d for m, d in zip(self.mids, self.depths)):
            raise ValueError(
                f"Arch mids must be {NUM_STAGES} tuples with len(mids[i]) == depths[i]; "
                f"received depths={self.depths}, mids={self.mids}."
            )
        fields = {"resolution": (self.resolution,), "depths": self.depths, "stem": (self.stem,)}
        fields.update({f"mids[{i}]": m for i, m in enumerate(self.mids)}, outs=self.outs)
        for field, values in fields.items():
            for v in values:
                if not 0 <= v <= 9:
                    raise ValueError(
                        f"Arch {field} holds {v}, which is not a single code digit; "
                        "resolution, depths and width digits are each one digit (see "
                        "SEARCH_SPACE.md)."
                    )
        for i, d in enumerate(self.depths):
            if not MIN_DEPTHS[i] <= d <= MAX_DEPTHS[i]:
                raise _bad(
                    DEPTH_POS[i],
                    f"{d}",
                    f"stage {i + 1} depth must be in {MIN_DEPTHS[i]}..{MAX_DEPTHS[i]}",
                    f"Use a depth in {MIN_DEPTHS[i]}..{MAX_DEPTHS[i]}.",
                )
        # Validate everything else through the code validator: one set of rules and messages
        # (9 = the most resolutions a one-digit index can address; spaces check their own).
        _validate_digits(self._make_code(), 9, None)

    def _make_code(self) -> str:
        parts = [str(self.resolution), *map(str, self.depths), str(self.stem)]
        for i in range(NUM_STAGES):
            out = str(self.outs[i])
            parts += [str(m) + out for m in self.mids[i]]
            parts.append("00" * (MAX_DEPTHS[i] - self.depths[i]))
        return "".join(parts)

    @functools.cached_property
    def code(self) -> str:
        """The 52-digit code (``parse(code).code == code`` for every valid code)."""
        return self._make_code()

    def digits(self) -> np.ndarray:
        """The code's digits as a fresh int32 array of shape [52]."""
        return np.frombuffer(self.code.encode("ascii"), dtype=np.uint8).astype(np.int32) - 48

    @classmethod
    def from_code(cls, code: str, num_resolutions: int = 1) -> Arch:
        """Parses and validates a code (see `SearchSpace.parse` for a space-aware check).

        Args:
            code: the 52-digit string.
            num_resolutions: how many resolutions the space has (bounds the first digit).

        Raises:
            ValueError: naming the position, field, found value, broken rule and the fix.
        """
        return _from_code(code, num_resolutions, None)

    def __str__(self) -> str:
        return self.code


_DIGIT_VALUE = {str(d): d for d in range(10)}.__getitem__


def _from_code(code, num_resolutions: int, space_name: str | None) -> Arch:
    if _is_valid_fast(code, num_resolutions):
        # Fast path (the 45,000 competition codes): decode straight from the string.
        depths = tuple(map(_DIGIT_VALUE, code[1:5]))
        mids = tuple(
            tuple(map(_DIGIT_VALUE, code[start : start + 2 * d : 2]))
            for (start, _), d in zip(_STAGE_SPANS, depths)
        )
        outs = tuple(_DIGIT_VALUE(code[start + 1]) for start, _ in _STAGE_SPANS)
        arch = _trusted_arch(_DIGIT_VALUE(code[0]), depths, outs[0], mids, outs)
        arch.__dict__["code"] = code
        return arch
    digits = _validate_digits(code, num_resolutions, space_name)
    depths = digits[1:5]
    mids = []
    outs = []
    for i in range(NUM_STAGES):
        start = FIRST_SLOT_POS + 2 * SLOT_OFFSETS[i]
        mids.append(digits[start : start + 2 * depths[i] : 2])
        outs.append(digits[start + 1])
    arch = _trusted_arch(digits[0], depths, digits[STEM_POS], tuple(mids), tuple(outs))
    arch.__dict__["code"] = code  # Valid codes round-trip, so seed the cached property.
    return arch


def _trusted_arch(resolution, depths, stem, mids, outs) -> Arch:
    """Builds an Arch from already-validated Python-int tuples without re-validating."""
    arch = object.__new__(Arch)
    object.__setattr__(arch, "resolution", resolution)
    object.__setattr__(arch, "depths", depths)
    object.__setattr__(arch, "stem", stem)
    object.__setattr__(arch, "mids", mids)
    object.__setattr__(arch, "outs", outs)
    return arch


@dataclasses.dataclass(frozen=True)
class Bounds:
    """A bounded sub-space: the largest width digit per location, the smallest depth per stage.

    ``digit_hi = (stem, stage 1, stage 2, stage 3, stage 4)``: every width digit of that
    location is drawn from ``1..hi`` (digit 1 is the widest). The stem and stage 1 share one
    bound, because stage 1's ``out`` is the stem digit. ``depth_lo``: each stage's depth is
    drawn from ``lo..MAX_DEPTHS``. Progressive-shrinking phases are bounded spaces, and so is
    the competition's evaluated space (`COMPETITION_BOUNDS`, ``docs/SEARCH_SPACE.md``).
    """

    digit_hi: tuple[int, int, int, int, int] = (NUM_WIDTHS,) * 5
    depth_lo: tuple[int, int, int, int] = MIN_DEPTHS

    def __post_init__(self):
        hi, lo = tuple(self.digit_hi), tuple(self.depth_lo)
        if len(hi) != 5 or any(not isinstance(h, int) or not 1 <= h <= NUM_WIDTHS for h in hi):
            raise ValueError(
                f"digit_hi={hi!r} is not a bound: expected 5 integers in 1..{NUM_WIDTHS} "
                "(stem, stage 1, stage 2, stage 3, stage 4), e.g. (3, 3, 3, 5, 7)"
            )
        if hi[0] != hi[1]:
            raise ValueError(
                f"digit_hi={hi!r}: the stem bound ({hi[0]}) and the stage-1 bound ({hi[1]}) "
                "must be equal, since stage 1's out digit is the stem digit"
            )
        if len(lo) != 4 or any(
            not isinstance(d, int) or not MIN_DEPTHS[i] <= d <= MAX_DEPTHS[i]
            for i, d in enumerate(lo)
        ):
            raise ValueError(
                f"depth_lo={lo!r} is not a bound: expected 4 depths, each within its stage's "
                f"range {list(zip(MIN_DEPTHS, MAX_DEPTHS))}"
            )
        object.__setattr__(self, "digit_hi", hi)
        object.__setattr__(self, "depth_lo", lo)

    def stage_hi(self, stage: int) -> int:
        """The digit bound of stage ``stage`` (0-based) of the four."""
        return self.digit_hi[stage + 1]

    def contains(self, arch: Arch) -> bool:
        """Whether ``arch`` lies in this bounded space."""
        if arch.stem > self.digit_hi[0]:
            return False
        for s in range(4):
            if arch.depths[s] < self.depth_lo[s] or arch.outs[s] > self.stage_hi(s):
                return False
            if any(m > self.stage_hi(s) for m in arch.mids[s]):
                return False
        return True


# The whole space, and the competition's evaluated space: every one of the 45,000 CVPR 2022
# Track 1 codes uses digits 1-3 in the stem and stages 1-2, 1-5 in stage 3, 1-7 in stage 4.
FULL_BOUNDS = Bounds()
COMPETITION_BOUNDS = Bounds(digit_hi=(3, 3, 3, 5, 7))
BOUNDS_PRESETS = {"full": FULL_BOUNDS, "competition": COMPETITION_BOUNDS}


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """One variant of the ResNet48 space: a data row of input size, widths and classes.

    Use a registered variant (`get_space` / `SPACES`) or build a new row with the same rules;
    ``stem_base`` must equal ``base_channels[0]`` because stage 1 adds to the stem output
    through identity shortcuts.

    Attributes:
        name: variant name.
        resolutions: input sizes (square); the code's first digit is a 1-based index into it.
        in_channels: image channels.
        stem_base: stem width at ratio 1.0.
        base_channels: widths of stages 1..4 at ratio 1.0.
        divisor: widths are rounded with `make_divisible` to multiples of it.
        num_classes: classifier outputs.
        imagenet_stem: 7x7/2 conv then 3x3/2 max-pool; else a 3x3/1 conv and no pool.

    FLOPs convention (`flops`): multiply-accumulates (MACs) of the conv and dense layers
    only, at the arch's resolution; BN, ReLU, pooling, residual adds and the dense bias are
    not counted. Spatial sizes follow padding "same" (``out = ceil(in / stride)``).
    Params (`params`) equal Keras ``count_params()`` of `tfnas.static.build_static_model`:
    conv kernels (no bias), 4 per BN channel (gamma, beta, moving mean and variance), and
    the dense kernel + bias.
    """

    name: str
    resolutions: tuple[int, ...]
    in_channels: int
    stem_base: int
    base_channels: tuple[int, int, int, int]
    divisor: int
    num_classes: int
    imagenet_stem: bool

    def __post_init__(self):
        object.__setattr__(self, "resolutions", tuple(int(r) for r in self.resolutions))
        object.__setattr__(self, "base_channels", tuple(int(c) for c in self.base_channels))
        if not 1 <= len(self.resolutions) <= 9 or min(self.resolutions) < 1:
            raise ValueError(
                f"SearchSpace {self.name!r}: resolutions must be 1..9 positive sizes (one code "
                f"digit indexes them); received {self.resolutions}."
            )
        if len(self.base_channels) != NUM_STAGES:
            raise ValueError(
                f"SearchSpace {self.name!r}: base_channels needs {NUM_STAGES} values; "
                f"received {self.base_channels}."
            )
        if self.stem_base != self.base_channels[0]:
            raise ValueError(
                f"SearchSpace {self.name!r}: stem_base ({self.stem_base}) must equal "
                f"base_channels[0] ({self.base_channels[0]}): stage 1 shares the stem's width."
            )
        table = tuple(
            tuple(make_divisible(base * r, self.divisor) for r in WIDTH_RATIOS)
            for base in (self.stem_base, *self.base_channels)
        )
        # Cached derived data (not dataclass fields, so eq/hash/repr ignore them).
        object.__setattr__(self, "_table", table)

    # -- codes -------------------------------------------------------------------------

    def parse(self, code: str) -> Arch:
        """Validates a 52-digit code for this space and returns its `Arch`.

        Raises:
            ValueError: for any malformed code (non-str, length, non-digit, resolution
                index, depth, zero in an active slot, non-zero inactive slot, unequal stage
                outs, stage-1 out != stem), naming position, field, found value, rule, fix.
        """
        return _from_code(code, len(self.resolutions), self.name)

    def _as_arch(self, arch) -> Arch:
        if isinstance(arch, Arch):
            if not 1 <= arch.resolution <= len(self.resolutions):
                raise _bad(
                    RES_POS,
                    f"{arch.resolution}",
                    f"space {self.name!r} has {len(self.resolutions)} resolution(s)",
                    f"Use a resolution index in 1..{len(self.resolutions)}.",
                )
            return arch
        return self.parse(arch)

    def resolution(self, arch: Arch | str) -> int:
        """The input size (pixels) of an arch."""
        return self.resolutions[self._as_arch(arch).resolution - 1]

    # -- widths ------------------------------------------------------------------------

    def stem_width(self, digit: int) -> int:
        """Stem output channels for a width digit 1..7."""
        return self._table[0][self._digit_index(digit)]

    def stage_width(self, stage: int, digit: int) -> int:
        """Channels of a conv in stage ``stage`` (0-based) for a width digit 1..7."""
        if not 0 <= stage < NUM_STAGES:
            raise ValueError(f"stage is 0-based in 0..{NUM_STAGES - 1}; received {stage}.")
        return self._table[stage + 1][self._digit_index(digit)]

    @staticmethod
    def _digit_index(digit: int) -> int:
        if not 1 <= digit <= NUM_WIDTHS:
            raise ValueError(f"Width digits are 1..{NUM_WIDTHS}; received {digit}.")
        return int(digit) - 1

    def width_table(self) -> np.ndarray:
        """int32 [5, 7] channel widths: row 0 stem, rows 1..4 stages; column = digit - 1."""
        return np.array(self._table, dtype=np.int32)

    def widths(self, arch: Arch | str) -> dict:
        """Channel widths of an arch: ``dict(stem=int, mids=((int, ...), ...), outs=(int,)*4)``."""
        arch = self._as_arch(arch)
        t = self._table
        return {
            "stem": t[0][arch.stem - 1],
            "mids": tuple(tuple(t[i + 1][m - 1] for m in arch.mids[i]) for i in range(4)),
            "outs": tuple(t[i + 1][arch.outs[i] - 1] for i in range(4)),
        }

    # -- special archs and sampling ----------------------------------------------------

    def largest(self, bounds: Bounds | None = None) -> Arch:
        """All depths at their maximum and every width digit 1 (the widest); resolution 1.

        The same for every bounded space (`Bounds` bound digits from above, depths from
        below)."""
        del bounds
        return Arch(1, MAX_DEPTHS, 1, tuple((1,) * d for d in MAX_DEPTHS), (1, 1, 1, 1))

    def smallest(self, bounds: Bounds | None = None) -> Arch:
        """Every depth at its lowest and every width digit at its bound; resolution 1.

        Without ``bounds``: depths 2 and digits 7. With `COMPETITION_BOUNDS`: depths 2 and
        digits 3, 3, 3, 5, 7 -- the narrowest subnet that is ever evaluated."""
        b = bounds or FULL_BOUNDS
        his = [b.stage_hi(s) for s in range(4)]
        mids = tuple((h,) * d for h, d in zip(his, b.depth_lo))
        return Arch(1, b.depth_lo, b.digit_hi[0], mids, tuple(his))

    def sample(self, rng: np.random.Generator, bounds: Bounds | None = None) -> Arch:
        """One uniform arch (`docs/SEARCH_SPACE.md` "Sampling").

        Each depth uniform in its range, then each free digit (stem, the ``out`` of stages
        2-4 -- stage 1's is the stem's -- and each active ``mid``) uniform in 1..7. With
        several resolutions the index is drawn uniformly first. With ``bounds``, the same
        within them; without, the draws are those of the unbounded sampler as it always was.

        Args:
            rng: a `np.random.Generator`, e.g. ``np.random.default_rng(seed)``.
            bounds: a `Bounds` sub-space (e.g. `COMPETITION_BOUNDS`), or None for all of it.
        """
        res = int(rng.integers(1, len(self.resolutions) + 1)) if len(self.resolutions) > 1 else 1
        if bounds is None:
            depths = tuple(int(d) for d in rng.integers(MIN_DEPTHS, np.add(MAX_DEPTHS, 1)))
            free = rng.integers(1, NUM_WIDTHS + 1, size=1 + 3 + sum(depths)).tolist()
        else:
            depths = tuple(
                int(d) for d in rng.integers(bounds.depth_lo, np.add(MAX_DEPTHS, 1))
            )
            his = [bounds.digit_hi[0]] + [bounds.stage_hi(s) for s in (1, 2, 3)]
            his += [bounds.stage_hi(s) for s in range(4) for _ in range(depths[s])]
            free = [int(rng.integers(1, h + 1)) for h in his]
        stem, outs = free[0], (free[0], *free[1:4])
        mids, k = [], 4
        for d in depths:
            mids.append(tuple(free[k : k + d]))
            k += d
        return _trusted_arch(res, depths, stem, tuple(mids), outs)

    def sample_many(self, n: int, seed: int) -> list[Arch]:
        """``n`` uniform archs from ``np.random.default_rng(seed)`` (deterministic; may repeat)."""
        rng = np.random.default_rng(seed)
        return [self.sample(rng) for _ in range(int(n))]

    def mutate(self, arch: Arch | str, rng: np.random.Generator, prob: float = 0.1) -> Arch:
        """A mutated copy of ``arch``; always valid, may equal the parent.

        Each gene is redrawn uniformly with probability ``prob``: the resolution index (when
        the space has several), each depth (new blocks get uniform ``mid`` digits, removed
        blocks are dropped), the stem digit (stage 1's ``out`` follows it), the ``out`` of
        stages 2-4 and each ``mid``.

        Args:
            arch: the parent (Arch or code).
            rng: a `np.random.Generator`.
            prob: per-gene mutation probability in [0, 1].
        """
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"mutate prob must be in [0, 1]; received {prob}.")
        arch = self._as_arch(arch)

        def redraw(current: int, lo: int, hi: int) -> int:
            return int(rng.integers(lo, hi + 1)) if rng.random() < prob else current

        res = arch.resolution
        if len(self.resolutions) > 1:
            res = redraw(res, 1, len(self.resolutions))
        stem = redraw(arch.stem, 1, NUM_WIDTHS)
        outs = [stem] + [redraw(o, 1, NUM_WIDTHS) for o in arch.outs[1:]]
        depths, mids = [], []
        for i in range(NUM_STAGES):
            d = redraw(arch.depths[i], MIN_DEPTHS[i], MAX_DEPTHS[i])
            old = arch.mids[i][:d]
            new = tuple(int(m) for m in rng.integers(1, NUM_WIDTHS + 1, size=d - len(old)))
            mids.append(tuple(redraw(m, 1, NUM_WIDTHS) for m in old) + new)
            depths.append(d)
        return Arch(res, tuple(depths), stem, tuple(mids), tuple(outs))

    def crossover(self, a: Arch | str, b: Arch | str, rng: np.random.Generator) -> Arch:
        """A child taking each stage (depth, mids and out) from a random parent.

        The stem digit comes with stage 1 (they are tied) and the resolution index from a
        random parent, so the child is always valid.
        """
        a, b = self._as_arch(a), self._as_arch(b)
        pick = rng.integers(0, 2, size=NUM_STAGES + 1)
        parents = [a if p == 0 else b for p in pick[:NUM_STAGES]]
        res = (a if pick[NUM_STAGES] == 0 else b).resolution
        return Arch(
            res,
            tuple(p.depths[i] for i, p in enumerate(parents)),
            parents[0].stem,
            tuple(p.mids[i] for i, p in enumerate(parents)),
            tuple(p.outs[i] for i, p in enumerate(parents)),
        )

    def size(self) -> int:
        """Number of distinct valid codes (archs) of the space.

        Counts codes, not networks: on a small-``divisor`` variant two digits can round to
        the same width, so some distinct archs build identical networks.
        """
        per_stage = [
            sum(NUM_WIDTHS**d for d in range(lo, hi + 1)) for lo, hi in zip(MIN_DEPTHS, MAX_DEPTHS)
        ]
        # stem digit (= stage 1 out) and the out of stages 2-4: 7**4; mids: per_stage.
        return len(self.resolutions) * NUM_WIDTHS**NUM_STAGES * math.prod(per_stage)

    # -- cost --------------------------------------------------------------------------

    def _spatial(self, resolution_index: int) -> tuple[int, tuple[int, int, int, int]]:
        """(stem output size, output size of each stage) for a resolution index."""
        return _spatial_sizes(self.resolutions[resolution_index - 1], self.imagenet_stem)

    def cost(self, arch: Arch | str) -> tuple[int, int]:
        """``(flops, params)`` in one pass; see the class docstring for the conventions."""
        return _cached_cost(self, self._as_arch(arch))

    def _compute_cost(self, arch: Arch) -> tuple[int, int]:
        t = self._table
        stem_hw, stage_hw = self._spatial(arch.resolution)
        k = 7 if self.imagenet_stem else 3
        c = t[0][arch.stem - 1]
        flops = stem_hw * stem_hw * k * k * self.in_channels * c
        params = k * k * self.in_channels * c + 4 * c
        for i in range(NUM_STAGES):
            row = t[i + 1]
            out = row[arch.outs[i] - 1]
            hw2 = stage_hw[i] * stage_hw[i]
            mids = arch.mids[i]
            # Block 1 sees the previous stage's width; projection where stride or width changes
            # (block 1 of stages 2-4; stage 1 never, its out equals the stem width).
            cin = c
            project = i > 0 or cin != out
            m = row[mids[0] - 1]
            w = 9 * cin * m + 9 * m * out + (cin * out if project else 0)
            params += w + 4 * m + 4 * out + (4 * out if project else 0)
            flops += hw2 * w
            for mid in mids[1:]:
                m = row[mid - 1]
                w = 9 * out * m + 9 * m * out
                params += w + 4 * m + 4 * out
                flops += hw2 * w
            c = out
        flops += c * self.num_classes
        params += c * self.num_classes + self.num_classes
        return flops, params

    def flops(self, arch: Arch | str) -> int:
        """Multiply-accumulates of the conv and dense layers at the arch's resolution.

        BN, ReLU, pooling, residual adds and biases are excluded; padding "same".
        """
        return self.cost(arch)[0]

    def params(self, arch: Arch | str) -> int:
        """Parameters; equals ``count_params()`` of the static Keras model (BN counts 4/channel)."""
        return self.cost(arch)[1]


# Rankings ask for flops() and params() of the same 45,000 archs; one pass serves both.
@functools.lru_cache(maxsize=1 << 17)
def _cached_cost(space: SearchSpace, arch: Arch) -> tuple[int, int]:
    return space._compute_cost(arch)


@functools.cache
def _spatial_sizes(size: int, imagenet_stem: bool) -> tuple[int, tuple[int, int, int, int]]:
    def down(x: int) -> int:  # padding "same", stride 2
        return -(-x // 2)

    stem = down(size) if imagenet_stem else size
    x = down(stem) if imagenet_stem else stem  # the 3x3/2 max-pool
    stages = [x]
    for _ in range(NUM_STAGES - 1):
        x = down(x)
        stages.append(x)
    return stem, tuple(stages)


# Variants as data rows. CIFAR: the classic CIFAR ResNet widths (stem 16, B 16/32/64/128),
# divisor 1 (exact rounding of small widths), and the small 3x3/1 stem.
SPACES: dict[str, SearchSpace] = {
    s.name: s
    for s in (
        SearchSpace("imagenet", (224,), 3, 64, (64, 128, 256, 512), 8, 1000, True),
        SearchSpace("fmnist", (28,), 1, 8, (8, 16, 32, 64), 1, 10, False),
        SearchSpace("cifar10", (32,), 3, 16, (16, 32, 64, 128), 1, 10, False),
        SearchSpace("cifar100", (32,), 3, 16, (16, 32, 64, 128), 1, 100, False),
    )
}


def arch_distance(a: Arch | str, b: Arch | str) -> int:
    """Seed paper 001 Eq. 2: L1 distance of the width digits (code positions 5..51), with an
    inactive slot's 0 read as 9. `tfnas.sampling.arch_distance` is the in-graph twin."""
    da = np.array([int(c) for c in (a if isinstance(a, str) else a.code)][5:])
    db = np.array([int(c) for c in (b if isinstance(b, str) else b.code)][5:])
    return int(np.abs(np.where(da == 0, 9, da) - np.where(db == 0, 9, db)).sum())


def get_space(name: str | SearchSpace) -> SearchSpace:
    """The registered variant ``name`` (a `SearchSpace` is passed through).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if isinstance(name, SearchSpace):
        return name
    try:
        return SPACES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown search space {name!r}; known spaces: {', '.join(sorted(SPACES))}."
        ) from None


def parse_many(space: SearchSpace | str, codes: Sequence[str]) -> list[Arch]:
    """Parses several codes with one space (ValueError names the index of a bad code)."""
    space = get_space(space)
    archs = []
    for i, code in enumerate(codes):
        try:
            archs.append(space.parse(code))
        except ValueError as e:
            raise ValueError(f"code #{i}: {e}") from None
    return archs
