"""File formats: the ``.npz`` partition file and atomic writes (``files``), ONNX models
(``onnx``), SVG pictures (``svg``) and GeoJSON (``geojson``) of partitions and boundaries."""
