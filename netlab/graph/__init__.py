"""`netlab graph`: a picture of a lab (pure parts). `build` turns a resolved lab (and the last
check report, if any) into a graph description, `dot` writes it in Graphviz's language,
`html` wraps the SVG Graphviz draws into one self-contained page. `netlab.apply.graphviz`
runs `dot`."""
