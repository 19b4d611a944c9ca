"""One router per resource; each route parses, calls one service method, and answers."""
