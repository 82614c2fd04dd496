"""Drive JupyterLab in a real browser: a JupyterLab server and headless Chromium, for the tests.

:class:`JupyterLab` starts ``python -m jupyter lab`` of this interpreter on 127.0.0.1 with a random
token, isolated from the user's Jupyter set-up (its own config, data, runtime, settings and
workspace folders and ``HOME``; a ``python3`` kernel spec that runs ``sys.executable``), and always
stops it and the kernels it started. :func:`chromium` launches Debian's Chromium
(``/usr/bin/chromium``) through Playwright with a fresh profile and the flags that keep it off the
network; Playwright never downloads a browser here. :class:`NotebookPage` opens a notebook, runs
all its cells, finds the ipywidgets ``Image`` and sliders, and takes screenshots.

Every wait has a timeout, and a failed wait says what the page showed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

#: Debian's Chromium (package ``chromium``; Playwright drives it itself, no ChromeDriver).
CHROMIUM = Path("/usr/bin/chromium")

#: Flags that keep Chromium off the network (no component updates, sync, first-run pages, QUIC,
#: background fetches) and working as root in a container (no sandbox, /tmp instead of a small /dev/shm).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

#: JupyterLab user settings: no news or update checks (no network, no notification toast), no
#: autosave, and every cell kept in the page (no windowing) so all prompts and outputs can be read.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def unavailable() -> str | None:
    """Why the browser tests cannot run here (``None`` when they can)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install 'gabic[test]' (never `playwright install`: Debian's Chromium is used)"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed: pip install 'gabic[notebooks]'"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


class JupyterLab:
    """A ``jupyter lab`` server on 127.0.0.1 serving ``root`` (use as a context manager).

    Args:
        root: the folder served (the notebooks' working directory).
        home: an empty folder for the server's ``HOME``, Jupyter folders, settings and log.
        env: extra environment variables for the server and its kernels (``None``: remove the variable).
        timeout: seconds to wait for the server to answer.

    Attributes:
        url: ``http://127.0.0.1:PORT``; token: the token; log: the server's log file.
    """

    def __init__(self, root: Path, home: Path, env: dict[str, str | None] | None = None, timeout: float = 90):
        self.root, self.home, self.timeout = Path(root), Path(home), timeout
        self.token = secrets.token_hex(24)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.home / "jupyterlab.log"
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self._started: set[int] = set()

    # ------------------------------------------------------------------ set-up
    def _prepare(self) -> dict[str, str]:
        jupyter = self.home / "jupyter"
        for d in ("config", "data", "runtime", "path/kernels/python3", "settings", "workspaces"):
            (jupyter / d).mkdir(parents=True, exist_ok=True)
        # The kernel is this interpreter, whatever kernel specs the user or the machine has: JUPYTER_PATH
        # comes first in Jupyter's search path.
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "metadata": {"debugger": True},
        }
        (jupyter / "path/kernels/python3/kernel.json").write_text(json.dumps(spec, indent=1))
        for plugin, values in LAB_SETTINGS.items():
            f = jupyter / "settings" / f"{plugin}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_", "IPYTHON"))}
        env.update(
            HOME=str(self.home),
            JUPYTER_CONFIG_DIR=str(jupyter / "config"),
            JUPYTER_DATA_DIR=str(jupyter / "data"),
            JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
            JUPYTER_PATH=str(jupyter / "path"),
            IPYTHONDIR=str(self.home / "ipython"),
        )
        for k, v in self.extra_env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def command(self) -> list[str]:
        jupyter = self.home / "jupyter"
        return [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={jupyter / 'settings'}",
            f"--LabApp.workspaces_dir={jupyter / 'workspaces'}",
            "--MappingKernelManager.cull_idle_timeout=0",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
        ]

    # ------------------------------------------------------------------ life
    def __enter__(self) -> JupyterLab:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        env = self._prepare()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        # The server may take another port when this one was taken meanwhile: its runtime file says which.
        runtime = self.home / "jupyter" / "runtime" / f"jpserver-{self.process.pid}.json"
        deadline = time.monotonic() + self.timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with status {self.process.returncode}:\n{tail(self.log)}")
            try:
                self.port = json.loads(runtime.read_text())["port"]
                self.url = f"http://127.0.0.1:{self.port}"
                status = self.api("status", timeout=5)
                break
            except (OSError, ValueError, KeyError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"jupyter lab did not answer {self.url}/api/status in {self.timeout:.0f} s:\n{tail(self.log)}"
                    ) from None
                time.sleep(0.25)
        assert "started" in status, status

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        """The JSON answer of ``/api/<path>`` (with the token)."""
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def lab_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}"

    def _descendants(self) -> set[int]:
        """The server's descendant processes (kernels run in their own sessions but stay its children)."""
        import psutil

        try:
            return {p.pid for p in psutil.Process(self.process.pid).children(recursive=True)}
        except psutil.Error:
            return set()

    def stop(self, timeout: float = 20) -> None:
        """Shut the server and its kernels down: the REST shutdown, then SIGTERM, then SIGKILL."""
        import psutil

        if self.process is None:
            return
        started = self._descendants() | self._started
        if self.process.poll() is None:
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                self.api("shutdown", method="POST", timeout=5)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(5)
        # Kernels the server did not stop (their own process groups): end them by id.
        left = []
        for pid in started:
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                p.terminate()
                left.append(p)
        _, alive = psutil.wait_procs(left, timeout=5)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        self.process = None

    def end_sessions(self) -> list[str]:
        """Shut down every notebook session (and its kernel), as closing JupyterLab's tab and its kernel
        does; the ids of the kernels ended."""
        self.remember_children()
        ended = []
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")
            ended.append(session["kernel"]["id"])
        return ended

    def remember_children(self) -> None:
        """Note the server's current child processes (kernels), so that :meth:`stop` ends them even
        when the server has already gone."""
        if self.process is not None:
            self._started |= self._descendants()


@contextlib.contextmanager
def chromium(profile: Path, width: int = 1440, height: int = 1000, timeout_ms: int = 60_000) -> Iterator:
    """A Playwright ``BrowserContext`` of headless Debian Chromium with a fresh profile in ``profile``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": width, "height": height},
            timeout=timeout_ms,
        )
        try:
            context.set_default_timeout(timeout_ms)
            yield context
        finally:
            context.close()


# ---------------------------------------------------------------------- the notebook in the page

#: The state of the current notebook: kernel, prompts, errors, dialogs (read by :meth:`NotebookPage.state`).
_STATE_JS = """
() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const notebook = panel && panel.content;
  const cells = notebook && notebook.model ? Array.from(notebook.model.cells) : [];
  const code = cells.filter((c) => c.type === 'code');
  const errors = [];
  code.forEach((c, i) => {
    for (const o of c.outputs.toJSON()) {
      if (o.output_type === 'error') errors.push(`code cell ${i + 1}: ${o.ename}: ${o.evalue}`);
      if (o.output_type === 'stream' && o.name === 'stderr' && String(o.text).includes('Traceback'))
        errors.push(`code cell ${i + 1} (stderr): ${String(o.text).slice(-800)}`);
    }
  });
  document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').forEach((e) => {
    if (e.innerText.includes('Traceback')) errors.push('page: ' + e.innerText.slice(-800));
  });
  const prompts = Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt'))
    .map((e) => e.innerText.trim());
  const session = panel && panel.sessionContext;
  return {
    title: panel ? panel.title.label : null,
    kernel: session && session.session && session.session.kernel ? session.session.kernel.name : null,
    status: session ? session.kernelDisplayStatus : null,
    executionCounts: code.map((c) => c.executionCount),
    prompts,
    errors,
    dialogs: Array.from(document.querySelectorAll('.jp-Dialog')).map((e) => e.innerText.slice(0, 300)),
    toasts: Array.from(document.querySelectorAll('.Toastify__toast')).map((e) => e.innerText.slice(0, 300)),
    runAll: window.__gabicRunAll === undefined ? null : window.__gabicRunAll,
  };
}
"""


class NotebookPage:
    """A notebook opened in JupyterLab in a browser page.

    Args:
        page: a Playwright ``Page``.
        lab: the :class:`JupyterLab` serving the notebook.
        path: the notebook's path relative to the server's root.
    """

    def __init__(self, page, lab: JupyterLab, path: str):
        self.page, self.lab, self.path = page, lab, path
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def state(self) -> dict:
        try:
            return self.page.evaluate(_STATE_JS)
        except Exception as err:  # the page may be gone or navigating
            return {"unreadable": repr(err)}

    def report(self, what: str, screenshot: Path | None = None) -> str:
        """A failure message: what was awaited, the notebook's state, console errors, the server log."""
        if screenshot is not None:
            with contextlib.suppress(Exception):
                self.page.screenshot(path=str(screenshot))
        state = json.dumps(self.state(), indent=1)[-6000:]
        console = "\n".join(self.console[-20:])
        shot = f"\nscreenshot: {screenshot}" if screenshot is not None else ""
        return (
            f"{what}\nnotebook state: {state}\nbrowser console:\n{console}\njupyter lab log (end):\n{tail(self.lab.log, 3000)}{shot}"
        )

    def wait_for(self, js: str, what: str, timeout_s: float, arg=None, failure_shot: Path | None = None, polling: int = 250):
        """Wait until ``js`` (a function of ``arg``) returns a truthy value; raise with :meth:`report` on timeout."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            return self.page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=polling).json_value()
        except PlaywrightError as err:
            raise AssertionError(
                self.report(f"timed out after {timeout_s:.0f} s waiting for {what} ({err.message.splitlines()[0]})", failure_shot)
            ) from None

    # ------------------------------------------------------------------ steps
    def open(self, timeout_s: float = 90, failure_shot: Path | None = None) -> dict:
        """Open the notebook; wait for its kernel to be ready and idle; dismiss dialogs and toasts."""
        self.page.goto(self.lab.lab_url(self.path), wait_until="domcontentloaded", timeout=timeout_s * 1000)
        self.wait_for(
            """(name) => {
                 const app = window.jupyterapp;
                 const w = app && app.shell && app.shell.currentWidget;
                 return !!(w && w.content && w.content.model && w.title.label === name
                           && document.querySelector('.jp-Notebook .jp-Cell'));
               }""",
            f"JupyterLab to show {self.path}",
            timeout_s,
            arg=Path(self.path).name,
            failure_shot=failure_shot,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            self.dismiss_dialogs()
            state = self.state()
            if state.get("kernel") and state.get("status") == "idle":
                self.lab.remember_children()
                return state
            if time.monotonic() > deadline:
                raise AssertionError(self.report(f"the kernel of {self.path} did not become idle in {timeout_s:.0f} s", failure_shot))
            time.sleep(0.25)

    def dismiss_dialogs(self) -> None:
        """Accept a dialog (a kernel selection: the proposed kernel) and close notification toasts."""
        for button in self.page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").all():
            with contextlib.suppress(Exception):
                button.click(timeout=2000)
        for button in self.page.locator(".Toastify__toast .jp-toast-dismiss, .Toastify__close-button").all():
            with contextlib.suppress(Exception):
                button.click(timeout=2000)

    def run_all(self, timeout_s: float = 240, failure_shot: Path | None = None) -> dict:
        """Run all cells (JupyterLab's ``notebook:run-all-cells``, the Run menu's entry) and wait until
        every code cell ran, the kernel is idle and no prompt shows ``[*]``; fail on errors."""
        self.page.evaluate(
            """() => {
                 window.__gabicRunAll = 'running';
                 window.jupyterapp.commands.execute('notebook:run-all-cells').then(
                   (ok) => { window.__gabicRunAll = ok === false ? 'failed' : 'done'; },
                   (err) => { window.__gabicRunAll = 'error: ' + err; });
               }"""
        )
        self.wait_for(
            """() => {
                 if (window.__gabicRunAll === 'running') return false;
                 const app = window.jupyterapp;
                 const panel = app.shell.currentWidget;
                 const status = panel.sessionContext.kernelDisplayStatus;
                 if (status === 'dead' || status === 'unknown') return true;  // reported below, not awaited
                 if (status !== 'idle') return false;
                 const prompts = Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt'));
                 return prompts.every((e) => !e.innerText.includes('*'));
               }""",
            f"all cells of {self.path} to run",
            timeout_s,
            failure_shot=failure_shot,
            polling=500,
        )
        state = self.state()
        problems = []
        if state["status"] != "idle":
            problems.append(f"the kernel is {state['status']!r}")
        if state["runAll"] != "done":
            problems.append(f"run all cells ended with {state['runAll']!r}")
        if None in state["executionCounts"]:
            problems.append(f"code cells without an execution count: {state['executionCounts']}")
        if state["errors"]:
            problems.append("errors in the outputs:\n" + "\n".join(state["errors"]))
        if problems:
            raise AssertionError(self.report("\n".join(problems), failure_shot))
        return state

    def save(self, timeout_s: float = 60, failure_shot: Path | None = None) -> None:
        """Save the notebook (``docmanager:save``, as Ctrl+S and autosave do) and wait until it is saved."""
        self.page.evaluate(
            """() => {
                 window.__gabicSaved = 'saving';
                 window.jupyterapp.commands.execute('docmanager:save').then(
                   () => { window.__gabicSaved = 'done'; }, (err) => { window.__gabicSaved = 'error: ' + err; });
               }"""
        )
        saved = self.wait_for(
            """() => window.__gabicSaved !== 'saving' && !window.jupyterapp.shell.currentWidget.context.model.dirty
                     && window.__gabicSaved""",
            f"{self.path} to be saved",
            timeout_s,
            failure_shot=failure_shot,
        )
        if saved != "done":
            raise AssertionError(self.report(f"saving {self.path} ended with {saved!r}", failure_shot))

    def widget_outputs(self, timeout_s: float = 60, failure_shot: Path | None = None) -> dict:
        """Wait until every widget output of the notebook (an output of MIME type
        ``application/vnd.jupyter.widget-view+json`` in the notebook's model) shows its widget or an
        error, and every visible picture (``img.widget-image``) has loaded; return the number of widget
        outputs shown, the errors among them (such as "Error displaying widget: model not found") and
        the number of visible pictures."""
        return self.wait_for(
            """() => {
                 const notebook = window.jupyterapp.shell.currentWidget.content;
                 const views = Array.from(notebook.model.cells).filter((c) => c.type === 'code')
                   .flatMap((c) => c.outputs.toJSON())
                   .filter((o) => o.data && o.data['application/vnd.jupyter.widget-view+json']).length;
                 const error = (e) => e.innerText.trim().startsWith('Error displaying widget');
                 const shown = Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'))
                   .filter((e) => error(e) || Array.from(e.children).some((c) => c.classList.contains('jupyter-widgets')));
                 const images = Array.from(document.querySelectorAll('.jp-Notebook img.widget-image'))
                   .filter((i) => i.offsetParent !== null);
                 if (!views || shown.length < views || images.some((i) => !(i.complete && i.naturalWidth > 0))) return false;
                 return {outputs: shown.length, errors: shown.filter(error).map((e) => e.innerText.trim().slice(0, 200)),
                         images: images.length};
               }""",
            f"the widget outputs of {self.path} to show",
            timeout_s,
            failure_shot=failure_shot,
            polling=500,
        )

    # ------------------------------------------------------------------ widgets
    def explorer(self, label: str | None = None, timeout_s: float = 60) -> tuple:
        """The widget output that holds an enabled slider described ``label`` (``None``: any slider) and an
        ipywidgets ``Image``, once its picture has loaded; returns ``(output, slider, img)`` locators."""
        from playwright.sync_api import Error as PlaywrightError

        slider = self.page.locator(".widget-hslider:not(:has(.noUi-target[disabled]))").filter(has=self.page.locator(".noUi-handle"))
        if label is not None:
            exact = re.compile(rf"^\s*{re.escape(label)}\s*$")
            slider = slider.filter(has=self.page.locator("label.widget-label", has_text=exact))
        output = self.page.locator(".jp-OutputArea-output").filter(has=slider).filter(has=self.page.locator("img.widget-image")).first
        what = f"a widget output with an enabled slider{f' described {label!r}' if label else ''} and an ipywidgets Image"
        try:
            output.wait_for(state="visible", timeout=timeout_s * 1000)
        except PlaywrightError:
            raise AssertionError(self.report(f"no {what} in {timeout_s:.0f} s")) from None
        img = output.locator("img.widget-image").first
        self.wait_for(
            "(i) => !!(i.src && i.complete && i.naturalWidth > 0)", f"the picture of {what}", timeout_s, arg=img.element_handle()
        )
        return output, output.locator(slider).first, img

    def layout_problems(self, output) -> list[str]:
        """What the widget output shows badly at the page's present size (:data:`_LAYOUT_JS`): pictures
        not at their own pixel size, clipped texts and options, controls overlapping each other."""
        return output.evaluate(_LAYOUT_JS)

    def smallest_text(self, img) -> float | None:
        """The size in CSS pixels on the page of the smallest text in the figure an ``<img>`` shows: the
        size the figure's PNG records in its pixels (``gabic.widgets._base.SMALLEST_TEXT_KEY``), times the
        scale the page shows it at; None for a picture that records none (a photo)."""
        from gabic.widgets._base import SMALLEST_TEXT_KEY, png_text

        written = png_text(self.image_bytes(img)).get(SMALLEST_TEXT_KEY)
        if written is None:
            return None
        scale = img.evaluate("(i) => Math.min(i.clientWidth / i.naturalWidth, i.clientHeight / i.naturalHeight)")
        return float(written) * scale

    def image_bytes(self, img) -> bytes:
        """The bytes of the picture an ``<img>`` shows (its ``blob:`` or ``data:`` source)."""
        data_url = img.evaluate(
            """async (i) => {
                 const blob = await (await fetch(i.src)).blob();
                 return await new Promise((ok, fail) => {
                   const r = new FileReader(); r.onload = () => ok(r.result); r.onerror = fail; r.readAsDataURL(blob); });
               }"""
        )
        return base64.b64decode(data_url.split(",", 1)[1])

    def move_slider(self, slider, keys: tuple[str, ...] = ("ArrowRight", "ArrowLeft")) -> tuple[str, str]:
        """Focus the slider's handle and press the first of ``keys`` that moves it (a slider at its
        maximum goes left); return its readout before and after."""
        from playwright.sync_api import Error as PlaywrightError

        readout = slider.locator(".widget-readout")
        before = readout.inner_text().strip()
        handle = slider.locator(".noUi-handle").first
        for key in keys:
            handle.focus()
            self.page.keyboard.press(key)
            try:
                self.page.wait_for_function(
                    "([el, before]) => el.innerText.trim() !== before", arg=[readout.element_handle(), before], timeout=5000
                )
                return before, readout.inner_text().strip()
            except PlaywrightError:
                continue
        raise AssertionError(self.report(f"the slider's readout stayed at {before!r} after pressing {', '.join(keys)} on its handle"))

    def wait_for_new_image(self, img, old_src: str, timeout_s: float = 60) -> None:
        self.wait_for(
            "([i, old]) => i.src !== old && i.complete && i.naturalWidth > 0",
            "the widget's Image to show a new picture",
            timeout_s,
            arg=[img.element_handle(), old_src],
        )


#: What a widget output shows badly (read by :meth:`NotebookPage.layout_problems`): pictures not shown at
#: their own pixel size, controls whose text is clipped, controls that overlap one another.
_LAYOUT_JS = """
(output) => {
  const problems = [];
  const visible = (e) => { const r = e.getBoundingClientRect(); return e.offsetParent !== null && r.width > 0 && r.height > 0; };
  const name = (e) =>
    (e.innerText || e.value || e.getAttribute('aria-label') || e.className || e.tagName).toString().trim().slice(0, 40);
  for (const img of output.querySelectorAll('img.widget-image')) {
    if (!visible(img)) continue;
    const dw = Math.abs(img.clientWidth - img.naturalWidth), dh = Math.abs(img.clientHeight - img.naturalHeight);
    if (dw > 1 || dh > 1)
      problems.push(`picture of ${img.naturalWidth}x${img.naturalHeight} px shown at ${img.clientWidth}x${img.clientHeight}`);
  }
  const canvas = document.createElement('canvas').getContext('2d');
  const texts = Array.from(output.querySelectorAll('.widget-label, .widget-readout, button, .widget-checkbox label, label'));
  for (const e of texts) {
    if (!visible(e) || !e.innerText.trim()) continue;
    if (e.scrollWidth > e.clientWidth + 1) problems.push(`text clipped: "${name(e)}" needs ${e.scrollWidth} px, has ${e.clientWidth}`);
  }
  for (const sel of output.querySelectorAll('select')) {
    if (!visible(sel)) continue;
    canvas.font = getComputedStyle(sel).font;
    const shown = sel.multiple ? Array.from(sel.options) : [sel.options[sel.selectedIndex]].filter(Boolean);
    for (const o of shown) {
      const need = canvas.measureText(o.text).width + (sel.multiple ? 8 : 24);
      if (need > sel.clientWidth + 1)
        problems.push(`option clipped: "${o.text.slice(0, 40)}" needs ${Math.ceil(need)} px, has ${sel.clientWidth}`);
    }
    if (sel.multiple && sel.scrollHeight > sel.clientHeight + 1)
      problems.push(`list shows ${Math.floor((sel.clientHeight * sel.options.length) / sel.scrollHeight)} of ${sel.options.length}`);
  }
  const boxes = Array.from(output.querySelectorAll(
    '.widget-label, .widget-readout, select, button, input[type=checkbox], .widget-slider, .widget-html-content, img.widget-image'
  )).filter(visible).map((e) => [e, e.getBoundingClientRect()]);
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const [a, ra] = boxes[i], [b, rb] = boxes[j];
      if (a.contains(b) || b.contains(a)) continue;
      const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (w > 2 && h > 2) problems.push(`"${name(a)}" and "${name(b)}" overlap by ${Math.round(w)}x${Math.round(h)} px`);
    }
  return problems;
}
"""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
