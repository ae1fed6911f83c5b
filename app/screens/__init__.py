"""One Viewer per screen of the explorer."""
