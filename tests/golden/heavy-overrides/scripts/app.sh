#!/bin/bash
# Provisions the heavy-overrides example image.
set -euo pipefail
echo "provisioning app"
