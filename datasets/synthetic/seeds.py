"""Randomness of the generator: one ``numpy.random.Generator`` per class, signer and sample.

Each is seeded from ``(seed, stream, index...)`` with the stream ids below, so output
is byte-identical for a seed and a class's recipe does not change when more classes
or signers are requested. Changing what a stream draws, or the order of its draws,
changes the data: bump :data:`GENERATOR_VERSION` when that is intended.
"""

# 2: left-handed signers' mouth corners swap sides like every other left/right pair.
GENERATOR_VERSION = 2

CLASS_STREAM, SIGNER_STREAM, SAMPLE_STREAM, NAME_STREAM, STYLE_STREAM = 1, 2, 3, 4, 5
