"""Vision steps as small, model-agnostic pieces: decode, detect, align/embed, quality."""

import cv2

# OpenCV's DNN engine logs a warning per model load about unsupported targets; keep
# its chatter to real errors so the CLI's output stays readable.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
