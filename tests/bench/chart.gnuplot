# chart.gnuplot - the benchmark chart: speed of each system relative to
# nearfs (nearfs = 1, higher is faster), one cluster of bars per test, on
# a log scale.  Called by summarize.py with -e "datafile='...';
# outfile='...'; columns=N".
set terminal pngcairo size 1400,650 font ",10" noenhanced
set output outfile
set title "Speed relative to nearfs (1 = nearfs; higher is faster; log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y 10
set yrange [0.001:1000]
set grid ytics
set xtics rotate by -35 left
set key outside right top vertical
set datafile missing "?"
# Twelve distinct colours, in the column order of summarize.py: the
# nearfs variants in greens, blue and orange, the peers in browns and
# greys, the local disk in teal and bindfs in purple.
array colours[12] = ["#1b5e20", "#66bb6a", "#a5d6a7", "#c5e1a5", \
	"#1565c0", "#ef6c00", "#6d4c41", "#bcaaa4", "#424242", "#9e9e9e", \
	"#00838f", "#8e24aa"]
do for [i=1:12] { set linetype i linecolor rgb colours[i] }
set bmargin 7
plot for [i=2:columns] datafile using i:xtic(1) title columnheader(i)
