"""The gaze test bed: images, reports and gaze built on real lesion boxes, lung masks and report language."""

from medalign.synthetic.testbed.generate import TESTBED_LABELS, TestbedConfig, ensure_testbed, generate_testbed

__all__ = ["TESTBED_LABELS", "TestbedConfig", "ensure_testbed", "generate_testbed"]
