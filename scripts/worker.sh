#!/usr/bin/env bash
# The LEVELS worker: a systemd unit that runs the current release bundle,
# which takes jobs from the queue. User data unpacks a bundle into
# /opt/worker/releases/<version>, points /opt/worker/current at it and
# restarts worker.service. Safe to run twice.
set -euo pipefail
service=worker

install -d -m 0755 "/opt/$service" "/opt/$service/releases"
cat >"/etc/systemd/system/$service.service" <<UNIT
[Unit]
Description=LEVELS $service
After=network-online.target
Wants=network-online.target
# No bundle until the first deployment: stay inactive instead of failing.
ConditionPathExists=/opt/$service/current/bin/start

[Service]
User=levels
Group=levels
EnvironmentFile=-/etc/levels/$service.env
WorkingDirectory=/opt/$service/current
ExecStart=/opt/$service/current/bin/start
Restart=on-failure
RestartSec=5
# Let a job in progress finish before the instance stops.
KillSignal=SIGTERM
TimeoutStopSec=120
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes
StateDirectory=$service
LogsDirectory=$service

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable "$service.service"
