"""Frame sources (camera, video, session), intrinsics and calibration."""
