"""What a partition tells: boundaries and level sets (``boundary``), boundary-first refinement
(``boundary_first``, ``bounds``), statistics (``stats``), verification and boundary samples
(``sampling``), per-layer partitions (``layers``), cost estimates (``estimate``), the planar
mesh (``mesh``), boundary curves and class regions with their Betti numbers (``topology``) and
regions matched across two partitions (``match``).  The public names are exported from
:mod:`splinecam`."""
