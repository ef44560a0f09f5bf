import os
import tempfile

# Tests compile into a private cache folder, so they never read a stale kernel from the user's cache.
# No background ahead-of-time builds from the many small test graphs (tests/test_cache.py turns them on).
os.environ.setdefault("GRAPHC_AOT", "0")
os.environ.setdefault("GRAPHC_CACHE_DIR", os.path.join(tempfile.gettempdir(), "graphc-test-cache"))
