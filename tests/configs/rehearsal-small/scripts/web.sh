#!/bin/sh
# The web image: its server comes with the deployment bundle.
set -eu
echo "web image ${IMAGE_VERSION:-}"
