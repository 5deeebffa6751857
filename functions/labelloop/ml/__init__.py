"""The model core, free of storage and HTTP: `head` (the numpy serving head and its artifact),
`trainer` (scikit-learn training with cross-validation; the training path only), `zeroshot`
(heads from label names and descriptions), `build` (labels and annotated samples to a model),
`quality` (per-version metrics) and `metrics` (the statistics they share)."""
