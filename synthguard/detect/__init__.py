"""Detection: the signals of a file (provenance, watermarks, classifier, machine-text score) and one verdict.

``context`` sets an inspection up and runs it, ``signals`` are the typed signals, ``image`` and ``text`` score
them, ``rules`` applies a policy to them, ``fusion`` turns them into a verdict, ``forensics`` makes pictures.
"""

from synthguard.detect.context import Inspection, InspectionContext, inspect_file
from synthguard.detect.fusion import Verdict, VerdictLabel
from synthguard.detect.image import load_detector

__all__ = ["Inspection", "InspectionContext", "Verdict", "VerdictLabel", "inspect_file", "load_detector"]
