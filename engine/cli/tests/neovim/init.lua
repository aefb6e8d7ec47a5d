-- Drives `studyflow lsp` from Neovim's own LSP client (headless), for engine/cli/tests/neovim.rs,
-- attached as docs/editors.md sets it up for Neovim 0.7 (one server for every YAML buffer):
-- opens each file of $SPECS (one path a line), waits for the server's diagnostics of each,
-- asks for hover at $HOVER_LINE / $HOVER_COL (0-based) and the symbols of the first file and
-- for completion at $COMPLETE_LINE / $COMPLETE_COL of the last, writes what it got as JSON to
-- $OUT, quits. The date checks count from $TODAY (the server's initializationOptions).
-- Files are opened from here, before Neovim would switch file type detection on itself.
vim.cmd('filetype on')
local out = { files = {} }
local published = {}
local original = vim.lsp.handlers['textDocument/publishDiagnostics']
vim.lsp.handlers['textDocument/publishDiagnostics'] = function(err, result, ctx, config)
  published[vim.uri_to_fname(result.uri)] = true
  return original(err, result, ctx, config)
end

local function finish()
  local f = io.open(os.getenv('OUT'), 'w')
  f:write(vim.fn.json_encode(out))
  f:close()
  vim.cmd('qa!')
end

local studyflow
vim.api.nvim_create_autocmd('FileType', { pattern = 'yaml', callback = function(ev)
  studyflow = studyflow or vim.lsp.start_client({
    name = 'studyflow',
    cmd = { os.getenv('STUDYFLOW'), 'lsp' },
    root_dir = vim.fn.getcwd(),
    init_options = { today = os.getenv('TODAY') },
  })
  vim.lsp.buf_attach_client(ev.buf, studyflow)
end })

local buffers = {}
for path in os.getenv('SPECS'):gmatch('[^\n]+') do
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  table.insert(buffers, { path = path, buf = vim.api.nvim_get_current_buf() })
end
if not studyflow then
  out.error = 'the client did not start'
  finish()
end
for _, b in ipairs(buffers) do
  local name = vim.api.nvim_buf_get_name(b.buf)
  if not vim.wait(60000, function() return published[name] end, 50) then
    out.error = 'no diagnostics were published for ' .. b.path
    finish()
  end
end
for _, b in ipairs(buffers) do
  local found = {}
  for _, d in ipairs(vim.diagnostic.get(b.buf)) do
    table.insert(found, { lnum = d.lnum, col = d.col, severity = d.severity, code = d.code, message = d.message })
  end
  table.insert(out.files, { path = b.path, diagnostics = found })
end

local first = buffers[1].buf
local position = { line = tonumber(os.getenv('HOVER_LINE')), character = tonumber(os.getenv('HOVER_COL')) }
local hover = vim.lsp.buf_request_sync(first, 'textDocument/hover',
  { textDocument = vim.lsp.util.make_text_document_params(first), position = position }, 20000)
out.hover = ''
for _, r in pairs(hover or {}) do
  if r.result and r.result.contents then out.hover = r.result.contents.value or '' end
end
local symbols = vim.lsp.buf_request_sync(first, 'textDocument/documentSymbol',
  { textDocument = vim.lsp.util.make_text_document_params(first) }, 20000)
out.symbols = {}
for _, r in pairs(symbols or {}) do
  for _, s in ipairs(r.result or {}) do table.insert(out.symbols, s.name) end
end

local last = buffers[#buffers].buf
local at = { line = tonumber(os.getenv('COMPLETE_LINE')), character = tonumber(os.getenv('COMPLETE_COL')) }
local completion = vim.lsp.buf_request_sync(last, 'textDocument/completion',
  { textDocument = vim.lsp.util.make_text_document_params(last), position = at }, 20000)
out.completion = {}
for _, r in pairs(completion or {}) do
  local items = r.result and (r.result.items or r.result) or {}
  for _, item in ipairs(items) do
    table.insert(out.completion, { label = item.label, insertText = item.insertText or '' })
  end
end
out.clients = #vim.lsp.get_active_clients()
finish()
