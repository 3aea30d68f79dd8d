"""Hypothesis profiles: `dev` (quick), `ci` (the default for .ci/run), `nightly` (many examples).

Select with HYPOTHESIS_PROFILE=dev|ci|nightly.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=20, deadline=None)
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
