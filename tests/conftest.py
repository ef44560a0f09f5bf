import os
import tempfile

# Tests compile into a private cache folder, so they never read a stale kernel from the user's cache.
os.environ.setdefault("GRAPHC_CACHE_DIR", os.path.join(tempfile.gettempdir(), "graphc-test-cache"))
