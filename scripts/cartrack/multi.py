"""Cell Ranger ``multi`` output folders: find a sample's count matrix and V(D)J files.

``cellranger multi`` writes one folder per sample, ``outs/per_sample_outs/<sample>/``, with
(10x Genomics, "Understanding multi outputs", Cell Ranger 7-9)::

    count/sample_filtered_feature_bc_matrix.h5      (or the MTX folder of the same name)
    vdj_b/filtered_contig_annotations.csv           (B cells; also airr_rearrangement.tsv)
    vdj_t/filtered_contig_annotations.csv           (alpha-beta T cells)

A sheet entry may name that per-sample folder, or a folder above it (``per_sample_outs/``,
``outs/`` or the run folder): then the subfolder named after the sheet's sample is taken, or
the only one there is. The files are looked for in the order listed in :data:`CANDIDATES`.
"""

from dataclasses import dataclass
from pathlib import Path

from cartrack.design import InputError

#: Where each kind of file lies inside a per-sample folder, in order of preference.
CANDIDATES = {
    "gex": (
        "count/sample_filtered_feature_bc_matrix.h5",
        "count/sample_filtered_feature_bc_matrix",
    ),
    "bcr": (
        "vdj_b/filtered_contig_annotations.csv",
        "vdj_b/filtered_contig_annotations.csv.gz",
        "vdj_b/airr_rearrangement.tsv",
    ),
    "tcr": (
        "vdj_t/filtered_contig_annotations.csv",
        "vdj_t/filtered_contig_annotations.csv.gz",
        "vdj_t/airr_rearrangement.tsv",
    ),
}
_PARTS = ("count", "vdj_b", "vdj_t")
_WHAT = {"gex": "count matrix", "bcr": "B-cell V(D)J file", "tcr": "T-cell V(D)J file"}


@dataclass(frozen=True)
class MultiFiles:
    """The files found in one per-sample folder (None where absent)."""

    folder: Path
    gex: Path | None
    bcr: Path | None
    tcr: Path | None


def is_sample_folder(path: Path) -> bool:
    """True for a per-sample ``multi`` folder (it holds ``count/``, ``vdj_b/`` or ``vdj_t/``)."""
    return path.is_dir() and any((path / p).is_dir() for p in _PARTS)


def is_multi_folder(path: str | Path) -> bool:
    """True when `path` is a per-sample ``multi`` folder or a folder above one."""
    path = Path(path)
    if not path.is_dir():
        return False
    if is_sample_folder(path):
        return True
    for base in (path, path / "per_sample_outs", path / "outs" / "per_sample_outs"):
        if base.is_dir() and any(is_sample_folder(d) for d in base.iterdir() if d.is_dir()):
            return True
    return False


def sample_folder(path: str | Path, *, sample: str) -> Path:
    """The per-sample folder that `path` names (see the module docstring).

    Raises
    ------
    InputError
        No per-sample folder there, or several and none named `sample`.
    """
    path = Path(path)
    if is_sample_folder(path):
        return path
    for base in (path, path / "per_sample_outs", path / "outs" / "per_sample_outs"):
        if not base.is_dir():
            continue
        found = sorted(d for d in base.iterdir() if is_sample_folder(d))
        if not found:
            continue
        named = [d for d in found if d.name == sample]
        if named:
            return named[0]
        if len(found) == 1:
            return found[0]
        names = ", ".join(d.name for d in found)
        raise InputError(
            f"sample {sample}: Cell Ranger multi folder {base} holds several samples ({names}) "
            f"and none is named {sample!r}; name the per-sample folder "
            f"(outs/per_sample_outs/<sample>/) in the sheet"
        )
    raise InputError(
        f"sample {sample}: {path} is not a Cell Ranger multi output folder (no count/, vdj_b/ "
        "or vdj_t/ in it, in per_sample_outs/<sample>/ or outs/per_sample_outs/<sample>/)"
    )


def find_multi_files(path: str | Path, *, sample: str) -> MultiFiles:
    """The count matrix and V(D)J B and T files of one sample's ``multi`` folder."""
    folder = sample_folder(path, sample=sample)
    found = {}
    for kind, names in CANDIDATES.items():
        found[kind] = next((folder / n for n in names if (folder / n).exists()), None)
    return MultiFiles(folder, **found)


def resolve(path: str | Path, kind: str, *, sample: str) -> Path:
    """The file of `kind` (``gex``, ``bcr`` or ``tcr``) in the ``multi`` folder `path`.

    Raises
    ------
    InputError
        Naming the sample, the folder and the file that is missing.
    """
    files = find_multi_files(path, sample=sample)
    found = getattr(files, kind)
    if found is None:
        expected = " or ".join(CANDIDATES[kind])
        raise InputError(
            f"sample {sample}, column '{kind}': Cell Ranger multi folder {files.folder} has no "
            f"{_WHAT[kind]} (expected {expected})"
        )
    return found
