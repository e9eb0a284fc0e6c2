"""How regions are computed: the trace of a model into ops (``trace``), the engine and the MLP
fast path (``engine``, ``chain``), progress and limits (``watch``), the result arrays
(``regions``), tiles merged back exactly (``tiles``) and the executors that run them
(``executors``)."""
