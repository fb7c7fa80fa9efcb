#!/usr/bin/python3
"""Tests of bench/charts.py: every chart is drawn, from result lines and from tables alike.

bench/charts_sample.md holds the sections a `scripts/bench --quick` run wrote (thread_pool and
process_pool with their `result` lines, asio and shared_memory with their tables only), and
doc/benchmarks.md the recorded ones. CI runs this (scripts/test, stage bench) before
`scripts/bench --quick`, which draws the charts of a fresh run.

When a harness's table or result lines change, refresh the sample from a quick run: the page
that `scripts/bench --quick` would have written is left in build/bench/charts/benchmarks.md;
copy its four sections into bench/charts_sample.md.

Usage: /usr/bin/python3 bench/test_charts.py [-v]
"""

import re
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ElementTree
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import charts  # noqa: E402  (found through the path above)

SAMPLE = HERE / "charts_sample.md"
DOC = HERE.parent / "doc" / "benchmarks.md"


class ChartsTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.TemporaryDirectory()
        self.out = Path(self.work.name)

    def tearDown(self):
        self.work.cleanup()

    def assert_svg(self, path: Path):
        root = ElementTree.parse(path).getroot()
        self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg", path)
        self.assertNotIn("<dc:date>", path.read_text(encoding="utf-8"), path)

    def test_every_chart_is_drawn_from_the_sample_run(self):
        runs = charts.read_doc(SAMPLE)
        self.assertEqual(sorted(runs), sorted(charts.BENCHMARKS))
        self.assertEqual(runs["thread_pool"].source, "result lines")
        self.assertEqual(runs["process_pool"].source, "result lines")
        written = charts.draw_all(SAMPLE, self.out)
        self.assertEqual(sorted(p.name for p in written), sorted(c.file for c in charts.CHARTS))
        for path in written:
            self.assert_svg(path)

    def test_every_chart_is_drawn_from_the_recorded_page(self):
        written = charts.draw_all(DOC, self.out)
        self.assertEqual(sorted(p.name for p in written), sorted(c.file for c in charts.CHARTS))

    def test_captions_say_when_where_and_at_which_commit(self):
        run = charts.read_doc(SAMPLE)["process_pool"]
        caption = run.caption()
        for part in (run.date, run.commit, run.machine, run.load_start, run.load_end):
            self.assertTrue(part)
            self.assertIn(part, caption)
        self.assertEqual(run.workers, 2)

    def test_result_lines_and_table_agree(self):
        """The figures a chart is drawn from are the table's (up to the table's rounding)."""
        text = SAMPLE.read_text(encoding="utf-8")
        for bench in ("thread_pool", "process_pool"):
            section = re.search(rf"<!-- bench:{bench}:begin -->\n(.*?)<!-- bench:{bench}:end",
                                text, re.S).group(1)
            from_results = charts.read_section(bench, section).rows
            from_table = charts.TABLE_READERS[bench](section.splitlines())
            self.assertEqual(len(from_results), len(from_table), bench)
            for row in from_results:
                matches = [t for t in from_table
                           if t.group == row.group and (t.label == row.label or
                                                             t.label.startswith(row.label + " ("))]
                self.assertEqual(len(matches), 1, f"{bench} {row.group} {row.label}")
                for ours, table in ((row.median, matches[0].median), (row.low, matches[0].low),
                                    (row.high, matches[0].high)):
                    self.assertAlmostEqual(ours, table, delta=max(0.051, 0.001 * table),
                                           msg=f"{bench} {row.group} {row.label}")

    def test_drawing_twice_gives_the_same_bytes(self):
        runs = charts.read_doc(SAMPLE)
        for name in ("thread_pool-w2", "processes"):
            drawn = []
            for k in range(2):
                path = self.out / f"{name}-{k}.svg"
                charts.save(charts.draw_chart(charts.chart_named(name), runs), path)
                drawn.append(path.read_bytes())
            self.assertEqual(drawn[0], drawn[1], name)

    def test_a_missing_figure_fails(self):
        text = SAMPLE.read_text(encoding="utf-8")
        broken = self.out / "broken.md"
        broken.write_text("\n".join(line for line in text.splitlines()
                                    if "group=w5_p99" not in line) + "\n", encoding="utf-8")
        with self.assertRaisesRegex(charts.ChartError, "w5_p99"):
            charts.draw_all(broken, self.out)

    def test_the_page_links_every_chart_of_its_sections(self):
        text = DOC.read_text(encoding="utf-8")
        for bench in charts.BENCHMARKS:
            section = re.search(rf"<!-- bench:{bench}:begin -->\n(.*?)<!-- bench:{bench}:end",
                                text, re.S).group(1)
            self.assertIn(charts.links(bench), section, bench)
        for image in re.findall(r"\]\((images/[^)]+\.svg)\)", text):
            self.assertTrue((DOC.parent / image).is_file(), image)


if __name__ == "__main__":
    unittest.main()
