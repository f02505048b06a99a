-- expect: INTERNAL
-- format widths are bounded
return string.format("%99999999d", 1)
