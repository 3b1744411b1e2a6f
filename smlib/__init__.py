"""shared-matryoshka: one encoder, an identity prefix shared by dating profiles and hiring résumés."""
__version__ = "0.1.0"
