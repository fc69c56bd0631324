"""``her2sim explore``: a local web app for teaching resistance mechanisms.

A JSON API on the standard library's ``ThreadingHTTPServer`` (:mod:`.app`) and one static page
(hand-written HTML, JavaScript and SVG in ``static/``; no CDN, no JavaScript library), with one
guided lesson per demonstration (:mod:`.lessons`). Start it with ``her2sim explore``.
"""
