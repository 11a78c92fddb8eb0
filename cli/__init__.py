"""`vecp`: a command-line client of the provisioner's HTTP API and of its queue path (docs/cli.md).

A tool for admins and scripts, never deployed with the app (.funcignore) and never imported by it. It speaks
plain HTTP and JSON (requests, already a dependency) so that it runs wherever the app's requirements are
installed; the queue subcommand needs azure-storage-queue, imported only when used.
"""
