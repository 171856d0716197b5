"""SPOTER models: ``build_model(config)`` builds the embedding or classification variant."""
from models.positional import (
    POSITIONAL_ENCODINGS,
    LearnedPositionalEncoding,
    SinglePositionalEncoding,
    SinusoidalPositionalEncoding,
    build_positional_encoding,
)
from models.spoter import (
    SpoterBody,
    SpoterClassifier,
    SpoterConfig,
    SpoterEmbedding,
    build_model,
    count_flops_per_sample,
)

__all__ = [
    "POSITIONAL_ENCODINGS", "LearnedPositionalEncoding", "SinglePositionalEncoding",
    "SinusoidalPositionalEncoding", "build_positional_encoding",
    "SpoterBody", "SpoterClassifier", "SpoterConfig", "SpoterEmbedding", "build_model",
    "count_flops_per_sample",
]
