"""watermark/text"""
