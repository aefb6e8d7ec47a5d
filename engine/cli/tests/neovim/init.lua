-- Drives `studyflow lsp` from Neovim's own LSP client (headless), for engine/cli/tests/neovim.rs:
-- opens $SPEC, waits for the server's first diagnostics, asks for hover at $HOVER_LINE /
-- $HOVER_COL (0-based) and for the document's symbols, writes what it got as JSON to $OUT, quits.
local out = {}
local published = false
local original = vim.lsp.handlers['textDocument/publishDiagnostics']
vim.lsp.handlers['textDocument/publishDiagnostics'] = function(err, result, ctx, config)
  published = true
  return original(err, result, ctx, config)
end

local function finish()
  local f = io.open(os.getenv('OUT'), 'w')
  f:write(vim.fn.json_encode(out))
  f:close()
  vim.cmd('qa!')
end

vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('SPEC')))
local bufnr = vim.api.nvim_get_current_buf()
local client_id = vim.lsp.start_client({
  name = 'studyflow',
  cmd = { os.getenv('STUDYFLOW'), 'lsp' },
  root_dir = vim.fn.getcwd(),
})
if not client_id then
  out.error = 'the client did not start'
  finish()
end
vim.lsp.buf_attach_client(bufnr, client_id)
if not vim.wait(60000, function() return published end, 50) then
  out.error = 'no diagnostics were published'
  finish()
end
out.diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(bufnr)) do
  table.insert(out.diagnostics, { lnum = d.lnum, col = d.col, severity = d.severity, code = d.code, message = d.message })
end
local position = { line = tonumber(os.getenv('HOVER_LINE')), character = tonumber(os.getenv('HOVER_COL')) }
local hover = vim.lsp.buf_request_sync(bufnr, 'textDocument/hover',
  { textDocument = vim.lsp.util.make_text_document_params(bufnr), position = position }, 20000)
out.hover = ''
for _, r in pairs(hover or {}) do
  if r.result and r.result.contents then out.hover = r.result.contents.value or '' end
end
local symbols = vim.lsp.buf_request_sync(bufnr, 'textDocument/documentSymbol',
  { textDocument = vim.lsp.util.make_text_document_params(bufnr) }, 20000)
out.symbols = {}
for _, r in pairs(symbols or {}) do
  for _, s in ipairs(r.result or {}) do table.insert(out.symbols, s.name) end
end
finish()
