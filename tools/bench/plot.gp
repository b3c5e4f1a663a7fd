# vm-fork-bench's plot: p50 latency against guest RAM, one line per measurement,
# log-log. run.sh calls it with datafile (vm-fork-bench's plot.dat: one block
# per measurement, a title line first) and outfile set.
if (!exists("datafile")) datafile = "plot.dat"
if (!exists("outfile")) outfile = "latency.png"

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1200,750 noenhanced font ",10"
} else {
	set terminal png size 1200,750 noenhanced
}
set output outfile

set title "vm-fork-bench: p50 latency vs guest RAM (log-log; one run, ratios matter, not absolutes)"
set xlabel "guest RAM"
set ylabel "p50 latency (ms)"
set logscale xy
set grid xtics ytics mytics
set xtics ("16M" 16, "64M" 64, "256M" 256, "1G" 1024, "4G" 4096, "16G" 16384, "64G" 65536)
set format y "%g"
set key outside right top
set offsets graph 0.03, graph 0.03, 0, 0

# Twelve distinct line styles, so that no two measurements look alike.
array colors[12] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", \
	"#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8"]
do for [k=1:12] {
	set linetype k linecolor rgb colors[k] linewidth 2 pointtype k pointsize 1.2
	if (k > 6) { set linetype k dashtype 2 }
}
set linetype cycle 12

stats datafile using 1 nooutput
plot for [i=0:STATS_blocks-1] datafile index i using 1:2 with linespoints \
	linetype i + 1 title columnheader(2)
