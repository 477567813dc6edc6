"""An issue becomes a mail: the issue file, its Markdown, images, the rendering (Jinja and
premailer), the MIME message, the web archive and a new newsletter folder.

May import: `config`, `errors`, `atomic`, `lazy`, and `audience` for the signed links and
references a message carries.
"""
