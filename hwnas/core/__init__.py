"""The few facts every layer of hwnas shares, each stated once: the registry helper, atomic files, where data
and caches live, the result cache, the data-set table, typed config options, rank correlation and the error
classes. Imports nothing else of ours, so every layer (`hardware` included) may import it."""
