"""The instructor's side of the mtssl_nb course kit. `mtssl grade` imports `mtssl_instructor.checks` when this package
is installed, and then grades with the hidden checks as well as the visible ones."""
