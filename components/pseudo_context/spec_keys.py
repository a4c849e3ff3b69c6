"""Names of PseudoContextAugmenter's parameter, input and output, shared by spec and executor."""
CONFIG = "config"  # PseudoContextConfig as JSON
EXAMPLES = "examples"
AUGMENTED_EXAMPLES = "augmented_examples"  # TFX needs output names distinct from input names
