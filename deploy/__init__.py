"""Deploying immich-aio as self-hosters do: patched images, a compose stack, a workflow following upstream."""
