"""Model-free video: frames through ffmpeg pipes, mattes and keys, subject tracking, 2.5D parallax, and script
videos made of stills (stills.py: scenes, timeline, Ken Burns paths; stills_graph.py: the one-pass ffmpeg graph).
Modules are imported by name (`from zhike.video.stills import ...`): this package imports nothing on its own."""
