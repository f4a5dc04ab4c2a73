"""IPython start-up file for the kernels that run the book's chapters (book/build.py installs it).

The chapters and the package draw progress bars with `tqdm.auto`, which in a notebook is an ipywidget. A
widget's state is not saved with the executed notebook, so a static page would show an empty bar or "0 %".
Here `tqdm.auto` hands out tqdm's text bar instead, drawn once, when it closes: a page keeps every line a bar
writes, so a bar redrawn as it runs would leave "0 %", "33 %", ... one under the other. Only the book's
kernels run this file; a reader's kernel keeps the widget bars.
"""
import tqdm.auto
import tqdm.std


class TextBar(tqdm.std.tqdm):
    """tqdm's text bar that draws only its finished state, "seeds: 100%|██████████| 3/3 [00:02<00:00]",
    in one write (a page shows each write of a bar as its own block)."""

    def __init__(self, *args, leave=True, **kwargs):
        self.keep = leave
        super().__init__(*args, leave=False, **kwargs)  # so close() calls display(msg="") once, and no more

    def display(self, msg=None, pos=None):
        if self.disable and msg == "" and self.keep:  # close() has begun: draw the finished bar
            self.fp.write(f"{self}\n")
        return False  # nothing while it runs, nothing to clear when it closes

    def clear(self, nolock=False):
        """Nothing on screen to clear (tqdm.write calls this around each message)."""


tqdm.auto.tqdm = TextBar
tqdm.auto.trange = lambda *args, **kwargs: TextBar(range(*args), **kwargs)
