"""Names of PseudoContextAugmenter's parameters, input and output, shared by spec and executor."""
RATE = "rate"
P_SUBSTITUTE = "p_substitute"
CONFIDENCE_JITTER = "confidence_jitter"
P_DROP_SECONDARY = "p_drop_secondary"
MODE = "mode"
SEED = "seed"
EXAMPLES = "examples"
AUGMENTED_EXAMPLES = "augmented_examples"  # TFX needs output names distinct from input names
