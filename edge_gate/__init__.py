"""edge_gate: firmware service of an automated border-control lane.

Sub-packages, one concern each: ``document`` (MRZ and the document reader),
``fingerprint`` and ``iris`` (capture, templates, matching), ``evaluation``
(error rates and calibration), ``gate`` (the pure lane core), ``turnstile``
(gpiozero devices), ``store`` (SQLite files), ``sync`` (template updates),
``daemon`` (the systemd service), ``rig`` (device emulators) and ``cli``.
"""

__version__ = "0.1.0"
