"""The signal domain: provider data -> factor inputs at a time ``t`` -> scored signal; replay over history.

One domain, two clocks: the live desk builds factor inputs from series ending now, the replay from
series ending at each bar. No generated (proto) code is imported here; ``service/`` maps results.
"""
