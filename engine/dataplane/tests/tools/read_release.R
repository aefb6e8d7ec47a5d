# Reads a studyflow release with base R's read.csv, as an analyst would, and checks that every
# column declared integer in the release's data package comes back numeric. The expected types
# arrive as a tab-separated file (table path, column, type) written from datapackage.json.
args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
types <- read.delim(args[2], header = FALSE, col.names = c("path", "column", "type"),
                    stringsAsFactors = FALSE)
problems <- character(0)
for (path in unique(types$path)) {
  df <- read.csv(file.path(folder, path), stringsAsFactors = FALSE, encoding = "UTF-8")
  for (i in which(types$path == path)) {
    column <- types$column[i]
    kind <- types$type[i]
    if (!(column %in% names(df))) {
      problems <- c(problems, sprintf("R: %s: no column %s", path, column))
      next
    }
    values <- df[[column]]
    if (all(is.na(values))) next
    ok <- switch(kind,
      integer = is.numeric(values) && all(values == round(values), na.rm = TRUE),
      number = is.numeric(values),
      boolean = is.logical(values) || all(tolower(values) %in% c("true", "false", "")),
      TRUE)
    if (!ok) problems <- c(problems, sprintf("R: %s: %s is %s, declared %s", path, column, class(values)[1], kind))
  }
}
if (length(problems) > 0) {
  writeLines(problems)
  quit(status = 1)
}
