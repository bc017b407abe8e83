"""Primitives: pure functions on arrays that every layer above may use.

Nothing here imports another part of restore (beyond restore.errors), reads files or keeps
state beyond a cache. One module a job:

- frames.py   stored frames (uint8 / uint16 RGB) <-> working frames (float32 in [0, 1])
- flow.py     DIS optical flow (with a scoped cache), backward warp, occlusion mask, flow-based
              interpolation of a frame pair
- noise.py    Gaussian noise sigma estimate (0-255 scale)
- resize.py   MATLAB's bicubic imresize (the 'BI' protocol)
- thumbs.py   grey area-averaged thumbnails (cut detection, alignment)
- jsonsafe.py the one convention for values written as JSON
"""
