"""Pictures: matplotlib figures (``plot``), the self-contained HTML viewer (``viewer``),
notebook display (``notebook``), pandas tables (``frame``) and TensorBoard logging
(``tensorboard``)."""
