"""Run the sandbox provider in the foreground: a local stand-in for JoyPix and
lipsync.studio that renders real MP4s. Ctrl-C (or SIGTERM) stops it cleanly.

Defaults come from the environment, through settings: SANDBOX_PORT,
SANDBOX_API_KEY (never printed or logged), SANDBOX_RTF; SANDBOX_CLOCK, a JSON
object turning on the realistic clock (jobs/providers/sandbox/clock.py), e.g.
'{"spread": 0.3, "queue_seconds": 2, "outliers": 0.02}'; and SANDBOX_FAULTS, a
JSON object of faults, e.g. '{"submit_429": 2, "poll_500": 1}', or of their
rates, '{"fault_rate": 0.2, "seed": 7}' or '{"rates": {"poll_500": 0.1}}' (see
jobs/providers/sandbox/config.py; --fault-rate and --fault-seed override those).
Faults can also be changed while it runs:

    curl -H "Authorization: Bearer $SANDBOX_API_KEY" -d '{"task_fail": 1}' \\
         http://127.0.0.1:8010/_sandbox/faults
"""

import json
import logging
import os
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs.providers.sandbox import FAULT_COUNTS, Faults, SandboxConfig, SandboxServer
from jobs.providers.sandbox.clock import RenderClock


class Command(BaseCommand):
    help = "Run the sandbox provider (JoyPix + lipsync.studio contracts) in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--port",
            type=int,
            default=settings.SANDBOX_PORT,
            help="0 picks a free port (default: SANDBOX_PORT)",
        )
        parser.add_argument(
            "--rtf",
            type=float,
            default=settings.SANDBOX_RTF,
            help="seconds of processing per second of video (default: SANDBOX_RTF)",
        )
        parser.add_argument(
            "--min-delay", type=float, default=0.5, help="shortest processing time in seconds"
        )
        parser.add_argument(
            "--output-ttl",
            type=float,
            default=72 * 3600,
            help="seconds an output stays downloadable (default: 72 h)",
        )
        parser.add_argument(
            "--storage-dir",
            default=str(Path(settings.DATA_DIR) / "sandbox"),
            help="where outputs are kept (default: DATA_DIR/sandbox)",
        )
        parser.add_argument(
            "--public-url",
            default=os.environ.get("SANDBOX_URL") or None,
            help="base of the output URLs (default: SANDBOX_URL if set, "
            "else the listening address)",
        )
        parser.add_argument(
            "--fault-rate",
            type=float,
            default=None,
            help="chance (0-1) that a provider answer is faulted, spread over the "
            "submit, status and output faults (see spread_rate)",
        )
        parser.add_argument(
            "--fault-seed", type=int, default=None, help="seed of the fault draws (default 0)"
        )
        parser.add_argument(
            "--keep-state",
            action="store_true",
            help="keep tasks and counts in STORAGE_DIR/journal.jsonl and go on with "
            "them after a restart",
        )

    def handle(
        self,
        *args,
        host,
        port,
        rtf,
        min_delay,
        output_ttl,
        storage_dir,
        public_url,
        fault_rate,
        fault_seed,
        keep_state,
        verbosity,
        **options,
    ):
        if rtf < 0 or min_delay < 0 or output_ttl <= 0:
            raise CommandError("--rtf and --min-delay must be >= 0 and --output-ttl > 0")
        config = SandboxConfig(
            api_key=settings.SANDBOX_API_KEY,
            rtf=rtf,
            min_delay=min_delay,
            output_ttl_seconds=output_ttl,
            storage_dir=Path(storage_dir),
            public_url=public_url,
            keep_state=keep_state,
        )
        faults = _faults_from_env()
        if fault_rate is not None:
            faults["fault_rate"] = fault_rate
        if fault_seed is not None:
            faults["seed"] = fault_seed
        try:
            config.faults.update(faults)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        config.clock = _clock_from_env()
        if verbosity >= 2:
            logging.getLogger("jobs.providers.sandbox").setLevel(logging.DEBUG)

        server = SandboxServer(config, host=host, port=port)
        # Ctrl-C and SIGTERM (runstudio's stop) only ask for the stop, which then runs
        # once, uninterrupted: from a terminal both arrive (Ctrl-C reaches the whole
        # process group, then runstudio forwards its stop), and an exception raised by
        # the second in the middle of the first's shutdown was a traceback. SIGINT is
        # set explicitly: a shell's background job inherits it ignored.
        stop = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda signum, frame: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            try:
                server.start()
            except OSError as exc:
                raise CommandError(f"Could not listen on {host}:{port}: {exc.strerror}") from None
            self._announce(server, config, rtf, min_delay, output_ttl, storage_dir)
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Sandbox provider stopped.")

    def _announce(self, server, config, rtf, min_delay, output_ttl, storage_dir):
        active = {k: v for k, v in config.faults.as_dict().items() if k in FAULT_COUNTS and v}
        if config.faults.rates:
            active["rates"] = config.faults.rates
            active["seed"] = config.faults.seed
        self.stdout.write(
            self.style.SUCCESS(
                f"Sandbox provider (JoyPix + lipsync.studio) listening on {server.url}"
            )
        )
        self.stdout.write(
            f"  rtf {rtf:g}, min delay {min_delay:g} s, outputs kept {output_ttl:g} s "
            f"in {storage_dir}; faults: {json.dumps(active) if active else 'none'}. "
            "Ctrl-C stops.",
        )
        self.stdout.flush()


def _faults_from_env() -> dict:
    raw = os.environ.get("SANDBOX_FAULTS", "").strip()
    if not raw:
        return {}
    try:
        faults = json.loads(raw)
    except ValueError:
        raise CommandError("SANDBOX_FAULTS must be a JSON object") from None
    if not isinstance(faults, dict):
        raise CommandError("SANDBOX_FAULTS must be a JSON object")
    try:
        Faults().update(faults)  # validate before use
    except ValueError as exc:
        raise CommandError(f"SANDBOX_FAULTS: {exc}") from None
    return faults


def _clock_from_env() -> RenderClock | None:
    """SANDBOX_CLOCK: unset or empty keeps the fast, exact clock."""
    try:
        return RenderClock.from_json(os.environ.get("SANDBOX_CLOCK", ""))
    except (ValueError, TypeError) as exc:
        raise CommandError(f"SANDBOX_CLOCK: {exc}") from None
