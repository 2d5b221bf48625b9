"""Site profiles: YAML data that says what to do to a page before it is captured.

``resolve_profile(name, url)`` picks a profile (``auto`` by domain, falling back to ``generic``);
``await run_profile(page, profile, deadline=..., artifacts_dir=...)`` runs its steps and looks for walls.
"""

from evicap.profiles.loader import Profile, Step, load_profile, load_profile_file, resolve_profile
from evicap.profiles.runner import ProfileRun, StepRecord, run_profile
from evicap.profiles.walls import Wall, detect_wall

# The architecture document's short names.
resolve = resolve_profile
run = run_profile

__all__ = [
    "Profile",
    "ProfileRun",
    "Step",
    "StepRecord",
    "Wall",
    "detect_wall",
    "load_profile",
    "load_profile_file",
    "resolve",
    "resolve_profile",
    "run",
    "run_profile",
]
