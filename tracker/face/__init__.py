"""The ICT-FaceKit head model: building, caching, rig, landmark sets and forward functions."""
