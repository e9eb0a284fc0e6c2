"""Applications built on the library: studies over data and models (``study``), training
videos (``dynamics``), toy data (``datasets``), the demo (``demo``) and the command line
(``cli``)."""
