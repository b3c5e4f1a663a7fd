# vm-fork-bench's plots, log-log against guest RAM, one line per measurement.
# run.sh calls it with datafile (one block per measurement, a title line first),
# outfile, and for the memory plot ylabel_text and title_text set.
if (!exists("datafile")) datafile = "plot.dat"
if (!exists("outfile")) outfile = "latency.png"
if (!exists("ylabel_text")) ylabel_text = "p50 latency (ms)"
if (!exists("title_text")) title_text = \
	"vm-fork-bench: p50 latency vs guest RAM (log-log; one run, ratios matter, not absolutes)"

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1200,750 noenhanced font ",10"
} else {
	set terminal png size 1200,750 noenhanced
}
set output outfile

set title title_text
set xlabel "guest RAM"
set ylabel ylabel_text
set logscale xy
set grid xtics ytics mytics
set xtics ("16M" 16, "64M" 64, "256M" 256, "1G" 1024, "4G" 4096, "16G" 16384, "64G" 65536)
set format y "%g"
set key outside right top
set offsets graph 0.03, graph 0.03, 0, 0

# Eighteen distinct line styles (six colours x solid, dashed, dotted), so that
# no two measurements look alike.
array colors[6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#000000"]
do for [k=1:18] {
	set linetype k linecolor rgb colors[(k - 1) % 6 + 1] linewidth 2 pointtype k pointsize 1.2
	if (k > 12) {
		set linetype k dashtype 3
	} else {
		if (k > 6) { set linetype k dashtype 2 }
	}
}
set linetype cycle 18

stats datafile using 1 nooutput
plot for [i=0:STATS_blocks-1] datafile index i using 1:2 with linespoints \
	linetype i + 1 title columnheader(2)
